// The static accessibility checks of tests/console_a11y.py, run in the page.
// Returns the problems found as text naming each element.
const problems = [];
const name = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
  (e.getAttribute('name') ? '[name=' + e.getAttribute('name') + ']' : '');
const visible = e => !!(e.offsetWidth || e.offsetHeight || e.getClientRects().length) &&
  getComputedStyle(e).visibility !== 'hidden';
if (!document.documentElement.lang) problems.push('<html> has no lang');
const h1 = document.querySelectorAll('h1');
if (h1.length !== 1) problems.push(h1.length + ' <h1> elements (one expected)');
let level = 0;
for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
  const l = Number(h.tagName[1]);
  if (level && l > level + 1) problems.push('heading level skipped at ' + name(h) + ' "' + h.textContent.trim() + '"');
  level = l;
}
for (const c of document.querySelectorAll('input, select, textarea')) {
  if (c.type === 'hidden' || c.type === 'submit' || c.type === 'button') continue;
  const labelled = (c.id && document.querySelector('label[for="' + CSS.escape(c.id) + '"]')) ||
    c.closest('label') || c.getAttribute('aria-label') || c.getAttribute('aria-labelledby') ||
    c.getAttribute('title');
  if (!labelled) problems.push('no label for ' + name(c));
}
for (const b of document.querySelectorAll('button, a[href]')) {
  if (!visible(b)) continue;
  const text = (b.textContent || '').trim() || b.getAttribute('aria-label') || b.getAttribute('title');
  if (!text) problems.push('no name for ' + name(b));
}
const parse = c => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null;
  const p = m[1].split(',').map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
const lum = ([r, g, b]) => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b); };
const background = e => { for (let n = e; n; n = n.parentElement) { const c = parse(getComputedStyle(n).backgroundColor);
  if (c && c[3] > 0.5) return c; } return [255, 255, 255, 1]; };
for (const e of document.querySelectorAll('body *')) {
  if (!visible(e)) continue;
  const own = Array.from(e.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const style = getComputedStyle(e);
  const fg = parse(style.color); if (!fg) continue;
  const a = lum(fg), b = lum(background(e));
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
  const needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
  if (ratio < needed) problems.push('contrast ' + ratio.toFixed(2) + ' < ' + needed + ' at ' + name(e) + ' "' + e.textContent.trim().slice(0, 30) + '"');
}
return problems;
