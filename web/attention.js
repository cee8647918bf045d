// Everything that draws the user's attention from outside the page: the title count, the favicon
// badge, desktop notifications and the screen-reader announcer.

const NOTIFY_KEY = 'confab.notifications';
let baseIcon = null;
let shownCount = -1;

/** "(3) confab" and a favicon with the count; plain "confab" and the plain icon at zero. */
export function showUnread(count) {
  if (count === shownCount) return;
  shownCount = count;
  document.title = count > 0 ? `(${count}) confab` : 'confab';
  const link = document.getElementById('favicon');
  if (!link) return;
  baseIcon ??= link.getAttribute('href');
  link.setAttribute('href', count > 0 ? badgeIcon(count) : baseIcon);
}

function badgeIcon(count) {
  const size = 64;
  const canvas = document.createElement('canvas');
  canvas.width = canvas.height = size;
  const ctx = canvas.getContext('2d');
  if (!ctx) return baseIcon;
  // The speech bubble of favicon.svg, redrawn so the badge can sit on top of it.
  ctx.fillStyle = '#3b6fd8';
  ctx.beginPath();
  ctx.roundRect(2, 8, 60, 42, 8);
  ctx.moveTo(14, 48);
  ctx.lineTo(14, 60);
  ctx.lineTo(28, 48);
  ctx.fill();
  const label = count > 99 ? '99+' : String(count);
  ctx.fillStyle = '#d93025';
  ctx.beginPath();
  ctx.arc(44, 22, 20, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = '#ffffff';
  ctx.font = `bold ${label.length > 2 ? 18 : 26}px system-ui, sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(label, 44, 23);
  return canvas.toDataURL('image/png');
}

// ---- desktop notifications ----

export function notificationsSupported() {
  return 'Notification' in window && window.isSecureContext;
}

export function notificationsEnabled() {
  return notificationsSupported() && Notification.permission === 'granted' && localStorage.getItem(NOTIFY_KEY) === 'on';
}

/** Must run inside a user gesture (a click): browsers ignore permission prompts otherwise. */
export async function toggleNotifications() {
  if (!notificationsSupported()) return 'unsupported';
  if (notificationsEnabled()) {
    localStorage.setItem(NOTIFY_KEY, 'off');
    return 'off';
  }
  const permission = Notification.permission === 'default'
    ? await Notification.requestPermission()
    : Notification.permission;
  if (permission !== 'granted') return 'denied';
  localStorage.setItem(NOTIFY_KEY, 'on');
  return 'on';
}

/** Only while the tab is hidden: a visible page already shows the message. */
export function notify(title, body, tag, onClick) {
  if (!document.hidden || !notificationsEnabled()) return;
  try {
    const n = new Notification(title, { body: body.length > 200 ? `${body.slice(0, 200)}…` : body, tag });
    n.onclick = () => {
      window.focus();
      onClick();
      n.close();
    };
  } catch {
    // Some platforms only allow notifications from a service worker; the badge still shows.
  }
}

// ---- screen readers ----

export function announce(text) {
  const el = document.getElementById('announcer');
  if (!el) return;
  // Clearing first makes a repeat of the same text announced again.
  el.textContent = '';
  setTimeout(() => { el.textContent = text; }, 50);
}
