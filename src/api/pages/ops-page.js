// The operations page's script (served at /admin/assets/ops.js; the page is src/api/pages/ops.ts).
// Plain browser JavaScript, no build step. Each panel fetches its own /v1/admin/* source and
// renders on its own, so a dependency that is away blanks only the panels that need it.
// Every value is put in the page as text (textContent), never as HTML.
(() => {
  'use strict';

  const REFRESH_MS = 15_000;
  const FETCH_TIMEOUT_MS = 10_000;
  // Sent with every request: /v1/admin/* refuses a cookie-authenticated POST without it (CSRF).
  const HEADERS = { accept: 'application/json', 'x-surgeline-admin': '1' };

  /** `el('td', { class: 'num' }, 'text', child…)`: attributes set one by one, children as text or nodes. */
  function el(tag, attributes = {}, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) {
      if (value !== undefined && value !== null) node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  const NONE = '—';
  const percent = (rate) => (rate === null || rate === undefined ? NONE : `${(rate * 100).toFixed(1)} %`);
  const millis = (ms) => (ms === null || ms === undefined ? NONE : `${Math.round(ms)} ms`);
  const rate = (n) => (n >= 10 ? n.toFixed(0) : n >= 1 ? n.toFixed(1) : String(Number(n.toPrecision(2))));
  const time = (iso) => (iso ? new Date(iso).toLocaleString() : NONE);

  function table(headings, rows, empty) {
    if (rows.length === 0) return el('p', { class: 'empty' }, empty);
    const head = el('tr', {}, ...headings.map(([text, cls]) => el('th', { class: cls }, text)));
    return el('table', {}, el('thead', {}, head), el('tbody', {}, ...rows));
  }

  // Panels

  const KPIS = [
    { key: 'onTimeRate', label: 'On-time rate', format: percent, better: 'higher' },
    { key: 'errorRate', label: 'Error rate', format: percent, better: 'lower' },
    { key: 'satisfaction', label: 'Satisfaction', format: percent, better: 'higher' },
  ];

  function renderKpis(body, data) {
    const cards = KPIS.map(({ key, label, format, better }) => {
      const value = data[key];
      const target = data.targets[key];
      const ok = value === null ? undefined : better === 'higher' ? value >= target : value <= target;
      return el(
        'div',
        { class: `kpi ${ok === undefined ? '' : ok ? 'ok' : 'miss'}`, 'data-testid': `kpi-${key}-card` },
        el('div', { class: 'label' }, label),
        el(
          'div',
          { class: 'value', 'data-testid': `kpi-${key}`, 'data-value': value ?? 'null' },
          format(value),
        ),
        el(
          'div',
          { class: 'target', 'data-testid': `kpi-${key}-target`, 'data-value': target },
          `target ${better === 'higher' ? '≥' : '≤'} ${format(target)}`,
          ok === undefined ? '' : ok ? ' · met' : ' · missed',
        ),
      );
    });
    const plain = (testid, label, value, text) =>
      el(
        'div',
        { class: 'kpi' },
        el('div', { class: 'label' }, label),
        el('div', { class: 'value', 'data-testid': testid, 'data-value': value ?? 'null' }, text),
      );
    body.replaceChildren(
      el(
        'div',
        { class: 'kpis' },
        ...cards,
        plain(
          'kpi-p50',
          'Received → dispatched p50',
          data.processingTimeMs.p50,
          millis(data.processingTimeMs.p50),
        ),
        plain(
          'kpi-p95',
          'Received → dispatched p95',
          data.processingTimeMs.p95,
          millis(data.processingTimeMs.p95),
        ),
        plain('kpi-ordersPerMinute', 'Orders per minute', data.ordersPerMinute, rate(data.ordersPerMinute)),
      ),
    );
  }

  const COLORS = ['#1a73e8', '#1e8e3e', '#d93025', '#f29900', '#9334e6', '#12b5cb', '#e52592', '#5f6368'];
  const charts = {};

  /** One uPlot chart per panel, built again only when its series change; otherwise its data is replaced. */
  function chart(id, container, labels, data) {
    const key = labels.join('|');
    const existing = charts[id];
    if (existing && existing.key === key) {
      existing.plot.setData(data);
      return;
    }
    existing?.plot.destroy();
    container.replaceChildren();
    const options = {
      width: Math.max(container.clientWidth, 300),
      height: 220,
      // Always the last hour, however few readings there are yet.
      scales: {
        x: { time: true, range: () => [Date.now() / 1000 - 3600, Date.now() / 1000] },
        y: { range: (u, min, max) => [0, Math.max(max, 5)] },
      },
      series: [{}, ...labels.map((label, i) => ({ label, stroke: COLORS[i % COLORS.length], width: 2 }))],
      axes: [{}, { size: 50 }],
    };
    charts[id] = { key, plot: new uPlot(options, data, container), container };
  }

  addEventListener('resize', () => {
    for (const { plot, container } of Object.values(charts)) {
      plot.setSize({ width: Math.max(container.clientWidth, 300), height: 220 });
    }
  });

  function renderThroughput(body, data) {
    const xs = data.minutes.map((m) => Date.parse(m.at) / 1000);
    const series = ['received', 'delivered', 'failed'];
    chart('throughput', body.querySelector('.chart'), series, [
      xs,
      ...series.map((s) => data.minutes.map((m) => m[s])),
    ]);
  }

  function renderQueues(body, data, state) {
    const names = [...new Set(data.samples.flatMap((s) => Object.keys(s.depths)))];
    const xs = data.samples.map((s) => Date.parse(s.at) / 1000);
    // A reading taken while Redis was away has no depths: a gap in the line, not a zero.
    const ys = names.map((name) => data.samples.map((s) => (name in s.depths ? s.depths[name] : null)));
    chart('queues', body.querySelector('.chart'), names, [xs, ...ys]);
    const latest = data.samples.at(-1);
    state.textContent = latest
      ? `Now: ${names.map((n) => `${n} ${latest.depths[n] ?? NONE}`).join(' · ')} (a reading every ${data.intervalSeconds} s)`
      : '';
  }

  function renderCarriers(body, data) {
    const rows = data.items.map((c) =>
      el(
        'tr',
        { 'data-testid': 'carrier', 'data-carrier-id': c.id },
        el('td', {}, c.id),
        el('td', {}, c.name),
        el('td', {}, c.enabled ? 'yes' : 'no'),
        el(
          'td',
          {},
          el(
            'span',
            { class: `badge ${c.breaker.state}`, 'data-testid': 'breaker' },
            c.breaker.state.replace('_', '-'),
          ),
        ),
        el('td', {}, time(c.breaker.since)),
        el('td', { class: 'num', 'data-testid': 'success-rate' }, percent(c.successRate)),
      ),
    );
    body.replaceChildren(
      table(
        [['Carrier'], ['Name'], ['Enabled'], ['Breaker'], ['Since'], ['Success (last 100)', 'num']],
        rows,
        'No carrier is registered.',
      ),
    );
  }

  function renderLockdowns(body, data) {
    const rows = data.items.map((l) =>
      el(
        'tr',
        { 'data-testid': 'lockdown' },
        el('td', {}, l.region),
        el('td', {}, l.reason),
        el('td', {}, time(l.since)),
        el('td', {}, l.until ? time(l.until) : 'until lifted'),
      ),
    );
    body.replaceChildren(
      table([['Region'], ['Reason'], ['Since'], ['Until']], rows, 'No region is locked down.'),
    );
  }

  function renderDeadLetters(body, data) {
    const rows = data.items.map((d) => {
      const last = d.attempts.at(-1);
      const button = el('button', { type: 'button', 'data-testid': 'retry' }, 'Retry');
      button.addEventListener('click', () => retry(d.orderId, button));
      return el(
        'tr',
        { 'data-testid': 'dead-letter', 'data-order-id': d.orderId },
        el('td', {}, button),
        el('td', { class: 'id' }, d.orderId),
        el('td', {}, d.failureReason),
        el('td', {}, time(d.failedAt)),
        el('td', { class: 'num' }, d.attempts.length),
        el('td', {}, last ? `${last.carrierId}: ${last.outcome}` : NONE),
      );
    });
    body.replaceChildren(
      table(
        [[''], ['Order'], ['Reason'], ['Failed at'], ['Calls', 'num'], ['Last call']],
        rows,
        'No dead letter.',
      ),
    );
  }

  function renderAlerts(body, data) {
    const rows = data.items.map((a) =>
      el(
        'tr',
        { 'data-testid': 'stock-alert' },
        el('td', {}, a.warehouseId),
        el('td', {}, a.sku),
        el('td', { class: 'num' }, a.available),
        el('td', { class: 'num' }, a.coverHours === null ? NONE : `${a.coverHours.toFixed(1)} h`),
        el('td', {}, time(a.inboundEta)),
        el('td', {}, time(a.since)),
      ),
    );
    body.replaceChildren(
      table(
        [['Warehouse'], ['SKU'], ['Available', 'num'], ['Cover', 'num'], ['Inbound ETA'], ['Since']],
        rows,
        'No stock at risk.',
      ),
    );
  }

  function renderOverdue(body, data) {
    const rows = data.items.map((s) =>
      el(
        'tr',
        { 'data-testid': 'overdue' },
        el('td', { class: 'id' }, s.orderId),
        el('td', {}, s.carrierId ?? NONE),
        el('td', {}, s.trackingNumber ?? NONE),
        el('td', {}, s.status),
        el('td', {}, time(s.estimatedDeliveryAt)),
        el('td', {}, time(s.lastEventAt)),
      ),
    );
    body.replaceChildren(
      table(
        [['Order'], ['Carrier'], ['Tracking number'], ['Status'], ['Expected'], ['Last event']],
        rows,
        'No parcel is overdue.',
      ),
    );
  }

  const windowSelect = document.getElementById('window');
  const PANELS = {
    kpis: {
      url: () => `/v1/admin/kpis?window=${encodeURIComponent(windowSelect.value)}`,
      render: renderKpis,
    },
    throughput: { url: () => '/v1/admin/overview/throughput', render: renderThroughput },
    queues: { url: () => '/v1/admin/overview/queue-depths', render: renderQueues },
    carriers: { url: () => '/v1/admin/carriers?limit=100', render: renderCarriers },
    lockdowns: { url: () => '/v1/admin/regions/lockdowns', render: renderLockdowns },
    'dead-letters': { url: () => '/v1/admin/dead-letters?limit=100', render: renderDeadLetters },
    alerts: { url: () => '/v1/admin/inventory/alerts', render: renderAlerts },
    overdue: { url: () => '/v1/admin/shipments?overdue=true&limit=100', render: renderOverdue },
  };

  // Loading, and saying what is away

  async function request(url, init = {}) {
    return fetch(url, {
      credentials: 'same-origin',
      headers: HEADERS,
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      ...init,
    });
  }

  async function problemOf(response) {
    try {
      return await response.json();
    } catch {
      return {};
    }
  }

  const NAMES = { redis: 'Redis', database: 'the database' };
  let readiness; // one /readyz look shared by the panels that failed together

  /** Which dependency a 503 means: named by its detail, else by /readyz (which names each one down). */
  async function awayOf(problem) {
    const detail = problem.detail ?? '';
    if (/redis/i.test(detail)) return 'Redis is';
    if (/database/i.test(detail)) return 'The database is';
    readiness ??= request('/readyz')
      .then(async (r) => (r.status === 503 ? ((await problemOf(r)).detail ?? '') : ''))
      .catch(() => '')
      .finally(() => setTimeout(() => (readiness = undefined), 2_000));
    const down = await readiness;
    const names = Object.keys(NAMES).filter((n) => new RegExp(`\\b${n}\\b`, 'i').test(down));
    if (names.length === 0) return 'A dependency is';
    const text = names.map((n) => NAMES[n]).join(' and ');
    return `${text[0].toUpperCase()}${text.slice(1)} ${names.length > 1 ? 'are' : 'is'}`;
  }

  function setState(id, text, down) {
    const section = document.getElementById(id);
    const state = section.querySelector('.state');
    state.textContent = text;
    state.classList.toggle('down', down);
    section.classList.toggle('down', down);
    state.setAttribute('data-down', down ? 'true' : 'false');
  }

  const loading = new Set();

  async function load(id) {
    if (loading.has(id)) return;
    loading.add(id);
    const section = document.getElementById(id);
    const body = section.querySelector('.body');
    try {
      const response = await request(PANELS[id].url());
      if (response.ok) {
        setState(id, '', false);
        const data = await response.json();
        PANELS[id].render(body, data, section.querySelector('.state'));
        if (data.nextCursor) setState(id, 'Showing the first 100; more in the API.', false);
        return;
      }
      const problem = await problemOf(response);
      if (response.status === 503) {
        setState(
          id,
          `${await awayOf(problem)} not answering: this panel comes back by itself once it is.`,
          true,
        );
      } else if (response.status === 401) {
        setState(id, 'Not signed in (or the session expired): open /admin?token=<ADMIN_TOKEN> again.', true);
      } else {
        setState(id, `The API answered ${response.status}: ${problem.detail ?? ''}`, true);
      }
    } catch {
      setState(id, 'The API did not answer; retrying.', true);
    } finally {
      loading.delete(id);
    }
  }

  async function retry(orderId, button) {
    button.disabled = true;
    const id = 'dead-letters';
    try {
      const response = await request(`/v1/admin/orders/${encodeURIComponent(orderId)}/retry`, {
        method: 'POST',
      });
      if (response.status === 202) {
        const answer = await response.json();
        button.closest('tr')?.remove();
        await load(id);
        setState(id, `Order ${orderId} re-driven: attempt ${answer.attempt} started.`, false);
        return;
      }
      const problem = await problemOf(response);
      const why =
        response.status === 503 ? `${await awayOf(problem)} not answering.` : (problem.detail ?? '');
      setState(id, `Retry of ${orderId} refused (${response.status}): ${why}`, response.status >= 500);
      button.disabled = false;
    } catch {
      setState(id, `Retry of ${orderId}: the API did not answer.`, true);
      button.disabled = false;
    }
  }

  function refresh() {
    for (const id of Object.keys(PANELS)) void load(id);
    document.getElementById('updated').textContent = `Updated ${new Date().toLocaleTimeString()}`;
  }

  windowSelect.addEventListener('change', () => void load('kpis'));
  refresh();
  setInterval(refresh, REFRESH_MS);
})();
