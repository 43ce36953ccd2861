// SPDX-License-Identifier: MIT
// icons.js — the dashboard's icons as inline SVG (own drawings, 24×24 grid, currentColor), so
// each state has a shape as well as a colour and a word.
// Must not: load anything; icons are decorative (aria-hidden): the words carry the meaning.

const PATHS = {
    // a circle with a check mark
    pass: '<circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" stroke-width="2.4"/>' +
        '<path d="M7 12.5l3.2 3.2L17.2 8.6" fill="none" stroke="currentColor" stroke-width="2.8" ' +
        'stroke-linecap="round" stroke-linejoin="round"/>',
    // an octagon with a cross
    fail: '<path d="M8 2h8l6 6v8l-6 6H8l-6-6V8z" fill="none" stroke="currentColor" ' +
        'stroke-width="2.4" stroke-linejoin="round"/><path d="M8.5 8.5l7 7M15.5 8.5l-7 7" ' +
        'stroke="currentColor" stroke-width="2.8" stroke-linecap="round"/>',
    // an arrow into a chip
    flashing: '<rect x="5" y="12" width="14" height="9" rx="1.5" fill="none" ' +
        'stroke="currentColor" stroke-width="2.2"/><path d="M12 2v8M8.5 6.8L12 10.2l3.5-3.4" ' +
        'fill="none" stroke="currentColor" stroke-width="2.4" stroke-linecap="round" ' +
        'stroke-linejoin="round"/><path d="M8 21v2M12 21v2M16 21v2" stroke="currentColor" ' +
        'stroke-width="2"/>',
    // a magnifier with a check
    verifying: '<circle cx="10" cy="10" r="7" fill="none" stroke="currentColor" ' +
        'stroke-width="2.4"/><path d="M15.2 15.2L21 21" stroke="currentColor" stroke-width="2.8" ' +
        'stroke-linecap="round"/><path d="M7 10.2l2.2 2.2 4-4.2" fill="none" ' +
        'stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round"/>',
    // a flask
    testing: '<path d="M9 2h6M10 2v6.5L4.5 19a2 2 0 0 0 1.8 3h11.4a2 2 0 0 0 1.8-3L14 8.5V2" ' +
        'fill="none" stroke="currentColor" stroke-width="2.2" stroke-linejoin="round"/>' +
        '<path d="M7.2 15h9.6" stroke="currentColor" stroke-width="2"/>',
    // an hourglass
    waiting: '<path d="M6 2h12M6 22h12M7 2c0 5 10 5 10 10S7 17 7 22' +
        'M17 2c0 5-10 5-10 10s10 5 10 10"' +
        ' fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round"/>',
    // a pause sign in a circle
    idle: '<circle cx="12" cy="12" r="10" fill="none" stroke="currentColor" stroke-width="2.4"/>' +
        '<path d="M9.5 8v8M14.5 8v8" stroke="currentColor" stroke-width="2.8" ' +
        'stroke-linecap="round"/>',
    // a broken link
    offline: '<path d="M9 7H7a5 5 0 0 0 0 10h2M15 7h2a5 5 0 0 1 0 10h-2" fill="none" ' +
        'stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/><path d="M3 3l18 18" ' +
        'stroke="currentColor" stroke-width="2.4" stroke-linecap="round"/>',
    // a warning triangle
    warn: '<path d="M12 3L2 21h20z" fill="none" stroke="currentColor" stroke-width="2.2" ' +
        'stroke-linejoin="round"/><path d="M12 10v5" stroke="currentColor" stroke-width="2.4" ' +
        'stroke-linecap="round"/><circle cx="12" cy="18" r="1.3" fill="currentColor"/>',
    // a key
    key: '<circle cx="8" cy="15" r="5" fill="none" stroke="currentColor" stroke-width="2.2"/>' +
        '<path d="M11.5 11.5L21 2M17 6l3 3M14.5 8.5l2.5 2.5" fill="none" stroke="currentColor" ' +
        'stroke-width="2.2" stroke-linecap="round"/>',
    // a play triangle
    start: '<path d="M7 4l13 8-13 8z" fill="currentColor"/>',
    // a square
    cancel: '<rect x="5" y="5" width="14" height="14" rx="1.5" fill="currentColor"/>',
    // a wrench
    engineer: '<path d="M14.5 3.5a5 5 0 0 0-5.8 6.6L3 15.8V21h5.2l5.7-5.7a5 5 0 0 0 6.6-5.8l-3.1 ' +
        '3.1-3.2-.8-.8-3.2z" fill="none" stroke="currentColor" stroke-width="2" ' +
        'stroke-linejoin="round"/>',
};

/** An <svg> element string for icon `name` (aria-hidden). */
export function iconSvg(name, cls = 'icon') {
    const p = PATHS[name] || PATHS.idle;
    return `<svg class="${cls}" viewBox="0 0 24 24" aria-hidden="true" focusable="false">` +
        `${p}</svg>`;
}

/** An <svg> element for icon `name`. */
export function icon(name, cls = 'icon') {
    const t = document.createElement('template');
    t.innerHTML = iconSvg(name, cls);
    return t.content.firstElementChild;
}
