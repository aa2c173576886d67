// /room/ID: joins (or rejoins) the room and shows the responsible's or the
// learner's view, depending on who is the room's host.
import { h, spinner, replace } from '../ui.js';
import { live } from '../live.js';

export async function render(ctx) {
  const { main, params, me } = ctx;
  const id = decodeURIComponent(params[0]);
  let room = live.rooms.get(id);
  if (!room) {
    replace(main, spinner('Entering the room…'));
    try {
      room = await live.join({ room: id });
    } catch (e) {
      replace(main, h('section', { class: 'card', role: 'alert' }, h('h1', null, 'This room is not available'),
        h('p', null, e.code === 'not_found' ? 'The room has been closed, or it is not one you can join.' : e.message),
        h('a', { class: 'btn btn-primary', href: me.responsible ? '/#/dashboard' : '/#/learn' }, 'Back')));
      return undefined;
    }
  }
  replace(main);
  const view = room.host && room.host.id === me.id
    ? await import('./room-host.js') : await import('./room-learner.js');
  const cleanup = view.render({ ...ctx, room });
  return () => {
    if (cleanup) cleanup();
    live.untrack(id);
  };
}
