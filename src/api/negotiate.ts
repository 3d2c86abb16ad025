import { messageLocale, type Locale } from '../domain/messages.js';

interface Range {
  value: string;
  q: number;
}

/** `a, b;q=0.5` → [{ value: 'a', q: 1 }, { value: 'b', q: 0.5 }] (lower-cased; a bad q reads 0). */
function ranges(header: string | undefined): Range[] {
  if (!header) return [];
  return header
    .split(',')
    .map((part) => {
      const [value, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
      const q = params.find((p) => p.startsWith('q='));
      const weight = q === undefined ? 1 : Number(q.slice(2));
      return { value, q: Number.isFinite(weight) ? Math.min(Math.max(weight, 0), 1) : 0 };
    })
    .filter((r) => r.value.length > 0);
}

/** The q an Accept header gives a media type: from its most specific matching range, 0 if none. */
function qualityOf(accept: Range[], type: string): number {
  const [main] = type.split('/');
  const exact = accept.find((r) => r.value === type);
  if (exact) return exact.q;
  const family = accept.find((r) => r.value === `${main}/*`);
  if (family) return family.q;
  return accept.find((r) => r.value === '*/*')?.q ?? 0;
}

/**
 * Whether a client asks for the HTML page rather than JSON: text/html weighs more than
 * application/json. JSON is the default — no Accept, a wildcard, or a tie answers JSON — so only a
 * client that prefers HTML (a browser) gets the page.
 */
export function prefersHtml(accept: string | undefined): boolean {
  const parsed = ranges(accept);
  const html = Math.max(qualityOf(parsed, 'text/html'), qualityOf(parsed, 'application/xhtml+xml'));
  return html > 0 && html > qualityOf(parsed, 'application/json');
}

/**
 * The page's locale from Accept-Language, q-values honoured (zh* → zh-CN, en* → en; the first of
 * equal weight wins), else the order's locale.
 */
export function pageLocale(acceptLanguage: string | undefined, orderLocale: string | null): Locale {
  const wanted = ranges(acceptLanguage)
    .map((r, i) => ({ ...r, i }))
    .filter((r) => r.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const { value } of wanted) {
    if (value === '*') break;
    if (value === 'zh' || value.startsWith('zh-')) return 'zh-CN';
    if (value === 'en' || value.startsWith('en-')) return 'en';
  }
  return messageLocale(orderLocale);
}
