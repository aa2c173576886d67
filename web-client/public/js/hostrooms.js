// Rooms this responsible has open, remembered on this device so the
// dashboard can offer "Back to the room" after a reload or a detour.
import { live } from './live.js';

const key = () => `otj.hostrooms.${live.user ? live.user.id : 'me'}`;

export function hostRooms() {
  try { return JSON.parse(localStorage.getItem(key()) || '[]'); } catch { return []; }
}

export function rememberRoom(room) {
  const list = hostRooms().filter((r) => r.room !== room.id);
  list.unshift({ room: room.id, code: room.code, title: room.module.title, at: Date.now() });
  try { localStorage.setItem(key(), JSON.stringify(list.slice(0, 10))); } catch { /* fine */ }
}

export function forgetRoom(id) {
  try { localStorage.setItem(key(), JSON.stringify(hostRooms().filter((r) => r.room !== id))); } catch { /* fine */ }
}
