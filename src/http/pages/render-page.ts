import { createHash } from 'node:crypto';

/** The one stylesheet of the broker's pages; its hash goes into the CSP, so no inline style else runs. */
export const PAGE_CSS = `
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1d2330}
main{max-width:30rem;margin:10vh auto;padding:2rem 1.5rem;background:#fff;border-radius:12px;box-shadow:0 1px 3px rgba(0,0,0,.12)}
@media (max-width:480px){main{margin:0;min-height:100vh;border-radius:0;box-shadow:none}}
h1{font-size:1.35rem;line-height:1.3;margin:0 0 .75rem}
p{margin:.5rem 0}
.hint{color:#5b6475;font-size:.925rem}
.badge{display:inline-block;font-size:.8rem;padding:.1rem .55rem;border-radius:999px;background:#e8ecf3;color:#3b4660;margin-bottom:.75rem}
.ok .badge{background:#dff5e6;color:#17663a}
.err .badge{background:#fde6e6;color:#9b1c1c}
label{display:block;font-weight:600;margin:1rem 0 .35rem}
input[type=password],input[type=text]{width:100%;padding:.7rem .8rem;font:inherit;border:1px solid #b8c0cc;border-radius:8px}
input:focus{outline:3px solid #9ec5ff;border-color:#2f6fde}
button{margin-top:1rem;width:100%;padding:.75rem;font:inherit;font-weight:600;color:#fff;background:#2f6fde;border:0;border-radius:8px;cursor:pointer}
button:hover{background:#2459b8}
button.secondary{background:#fff;color:#1d2330;border:1px solid #b8c0cc}
button.secondary:hover{background:#f0f2f5}
pre{white-space:pre-wrap;overflow-wrap:anywhere;font-size:.85rem;background:#f0f2f5;padding:.6rem .8rem;border-radius:8px}
.error{color:#9b1c1c;background:#fdf0f0;border-radius:8px;padding:.6rem .8rem}
a{color:#2f6fde}
code{font-size:.9em;background:#f0f2f5;padding:.05rem .3rem;border-radius:4px;overflow-wrap:anywhere}
`.trim();

export const PAGE_CSS_HASH = `'sha256-${createHash('sha256').update(PAGE_CSS).digest('base64')}'`;

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Escapes text for HTML content and attribute values: nothing from a request is ever markup. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

export interface PageOptions {
  title: string;
  tone?: 'ok' | 'err' | 'neutral';
  badge?: string;
  /** Trusted HTML built from escaped parts. */
  body: string;
}

/** A complete, self-contained page: no script, no third-party asset, readable on a phone. */
export function renderPage(options: PageOptions): string {
  const tone = options.tone ?? 'neutral';
  const badge = options.badge ? `<span class="badge">${escapeHtml(options.badge)}</span>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(options.title)}</title>
<style>${PAGE_CSS}</style>
</head>
<body>
<main class="${tone}">
${badge}
<h1>${escapeHtml(options.title)}</h1>
${options.body}
</main>
</body>
</html>
`;
}
