// The dashboard's page: views of the cluster kept live by the Kubernetes
// API's own list-then-watch, and actions through the same API kubectl
// uses. No framework and no build step: views build a fresh tree from the
// informers' caches whenever a watched object changes, and morphdom
// patches <main> to match it, so focus, a field being typed in and a click
// in progress survive. Buttons name their action in data attributes and
// one listener acts on them, so no handler is tied to a replaced node.

import morphdom from './vendor/morphdom.mjs';

// Loaded when first needed, so the first paint does not wait for them.
let yaml = null;
const loadYaml = () => import('./vendor/js-yaml.mjs').then((m) => { yaml = m; scheduleRender(); return m; });
let xtermStyles = null;
const loadXterm = () => {
  // Its styles too, which no other view needs.
  xtermStyles ||= new Promise((resolve, reject) => {
    const sheet = Object.assign(document.createElement('link'), { rel: 'stylesheet', href: '/assets/vendor/xterm.css' });
    sheet.onload = resolve;
    sheet.onerror = () => reject(new Error('the terminal styles did not load'));
    document.head.append(sheet);
  });
  return Promise.all([import('./vendor/xterm.mjs'), xtermStyles]).then(([m]) => m);
};

// --- the API ---------------------------------------------------------------

/** An API error, with the Status message the server gave. */
class ApiError extends Error {}

async function api(path, { method = 'GET', body, type = 'application/json' } = {}) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = type;
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let doc = null;
  try { doc = text ? JSON.parse(text) : null; } catch { doc = null; }
  if (!r.ok) {
    const why = (doc && (doc.message || doc.reason)) || text || r.statusText;
    throw new ApiError(`${method} ${path}: ${why}`);
  }
  return doc;
}

/** The WebSocket URL of a path on this origin. */
function wsUrl(path) {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${path}`;
}

/** The kinds the views show, with where they live in the API. */
const KINDS = {
  pods: { kind: 'Pod', base: '/api/v1', ns: true },
  replicationcontrollers: { kind: 'ReplicationController', base: '/api/v1', ns: true, scale: true },
  replicasets: { kind: 'ReplicaSet', base: '/apis/apps/v1', ns: true, scale: true },
  deployments: { kind: 'Deployment', base: '/apis/apps/v1', ns: true, scale: true },
  jobs: { kind: 'Job', base: '/apis/batch/v1', ns: true },
  services: { kind: 'Service', base: '/api/v1', ns: true },
  endpoints: { kind: 'Endpoints', base: '/api/v1', ns: true },
  events: { kind: 'Event', base: '/api/v1', ns: true },
  namespaces: { kind: 'Namespace', base: '/api/v1', ns: false },
  nodes: { kind: 'Node', base: '/api/v1', ns: false },
  configmaps: { kind: 'ConfigMap', base: '/api/v1', ns: true },
  secrets: { kind: 'Secret', base: '/api/v1', ns: true },
  serviceaccounts: { kind: 'ServiceAccount', base: '/api/v1', ns: true },
};

function objectPath(plural, ns, name) {
  const k = KINDS[plural];
  const scope = k.ns && ns ? `/namespaces/${encodeURIComponent(ns)}` : '';
  return `${k.base}${scope}/${plural}${name ? '/' + encodeURIComponent(name) : ''}`;
}

function pluralOfKind(apiVersion, kind) {
  const base = apiVersion && apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion || 'v1'}`;
  for (const [plural, k] of Object.entries(KINDS)) {
    if (k.kind === kind && k.base === base) return plural;
  }
  return null;
}

// --- informers: a list, then a watch from its resourceVersion ------------------

/**
 * Every object of one kind (in every namespace), kept current from the
 * API's watch. After a 410 (the watch fell too far behind) it lists again.
 */
class Informer {
  constructor(plural, firstPage = 0) {
    this.plural = plural;
    this.firstPage = firstPage;
    /** Every object's count while only a first page is known. */
    this.total = null;
    this.items = new Map();
    /** `items` in order, until they change. */
    this.sorted = null;
    this.synced = false;
    this.listeners = new Set();
    this.run();
  }

  key(o) { return `${o.metadata.namespace || ''}/${o.metadata.name}`; }

  notify() {
    this.sorted = null;
    for (const f of this.listeners) f();
  }

  async run() {
    // The first look at a long list: one page, with the count of the
    // rest, so a view can show something before the whole list arrives.
    if (this.firstPage) {
      try {
        const page = await api(`${objectPath(this.plural)}?limit=${this.firstPage}`);
        if (!this.synced) {
          this.items = new Map(page.items.map((o) => [this.key(o), o]));
          this.total = page.items.length + (page.metadata.remainingItemCount || 0);
          this.notify();
          // Let the page paint that before parsing the whole list.
          await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
        }
      } catch (e) {
        showError(e);
      }
    }
    for (;;) {
      try {
        const list = await api(objectPath(this.plural));
        this.total = null;
        this.items = new Map(list.items.map((o) => [this.key(o), o]));
        this.synced = true;
        this.notify();
        await this.watch(list.metadata.resourceVersion);
      } catch (e) {
        showError(e);
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  /**
   * Follows the watch from `rv` over a WebSocket (one event a message: a
   * browser keeps only six HTTP connections per host, which streamed
   * watches would use up). Returns when the objects must be listed again.
   */
  async watch(rv) {
    for (;;) {
      const resume = await new Promise((resolve) => {
        const ws = new WebSocket(wsUrl(`${objectPath(this.plural)}?watch=1&allowWatchBookmarks=true&resourceVersion=${rv}`));
        let opened = false;
        let expired = false;
        ws.onopen = () => { opened = true; };
        ws.onmessage = (m) => {
          const ev = JSON.parse(m.data);
          if (ev.type === 'ERROR') { expired = true; ws.close(); return; }
          rv = ev.object.metadata.resourceVersion || rv;
          if (ev.type === 'BOOKMARK') return;
          if (ev.type === 'DELETED') this.items.delete(this.key(ev.object));
          else this.items.set(this.key(ev.object), ev.object);
          this.notify();
        };
        ws.onclose = () => resolve(opened && !expired);
      });
      if (!resume) return;
    }
  }

  /**
   * The objects in namespace `ns` ("" for all), by namespace and name as
   * kubectl orders them (bytewise). The order is kept until the objects
   * change: views read it on every render.
   */
  list(ns) {
    if (!this.sorted) {
      const key = (o) => `${o.metadata.namespace || ''}\u0000${o.metadata.name}`;
      this.sorted = [...this.items.values()].map((o) => [key(o), o])
        .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([, o]) => o);
    }
    return ns ? this.sorted.filter((o) => o.metadata.namespace === ns) : this.sorted.slice();
  }

  get(ns, name) { return this.items.get(`${ns || ''}/${name}`); }
}

const informers = {};
function informer(plural) {
  if (!informers[plural]) {
    // Pods may number thousands: the workloads view shows the first page
    // while the rest loads.
    informers[plural] = new Informer(plural, plural === 'pods' ? PAGE : 0);
    informers[plural].listeners.add(scheduleRender);
  }
  return informers[plural];
}

// --- traffic: the service proxy's counters per endpoint ---------------------------

/** The latest counters, kept current over a WebSocket that sends each change (once a view reads them). */
let traffic = null;
function trafficNow() {
  if (traffic === null) {
    traffic = [];
    followTraffic();
  }
  return traffic;
}
function followTraffic() {
  const ws = new WebSocket(wsUrl('/wrun/traffic'));
  ws.onmessage = (m) => { traffic = JSON.parse(m.data); scheduleRender(); };
  ws.onclose = () => setTimeout(followTraffic, 1000);
}

// --- the Docker side: lists kept current by the Docker API's event stream -------------

/**
 * A Docker list (containers or images) as the Docker API gives it, listed
 * again whenever the event stream reports a change to it. Changes that
 * arrive while a list is in flight are folded into one more list.
 */
class DockerList {
  constructor(path) {
    this.path = path;
    this.items = [];
    this.synced = false;
    /** Counts the lists, so a detail page knows its inspect is stale. */
    this.version = 0;
    this.busy = false;
    this.again = false;
  }

  async refresh() {
    if (this.busy) { this.again = true; return; }
    this.busy = true;
    try {
      do {
        this.again = false;
        this.items = await api(this.path);
        this.synced = true;
        this.version += 1;
        scheduleRender();
      } while (this.again);
    } catch (e) {
      showError(e);
    } finally {
      this.busy = false;
    }
  }
}

const docker = {
  containers: new DockerList('/docker/containers/json?all=1'),
  images: new DockerList('/docker/images/json'),
  followed: false,
};

/**
 * Follows `GET /docker/events` (a JSON object a line) and lists containers
 * and images once it is open, so no change falls between the list and the
 * stream; lists again on each change, and after a reconnect. Started when
 * a view first shows the Docker side.
 */
function followDocker() {
  if (docker.followed) return;
  docker.followed = true;
  (async () => {
    for (;;) {
      try {
        const r = await fetch('/docker/events');
        if (!r.ok) throw new ApiError(`GET /docker/events: ${(await r.text()) || r.status}`);
        docker.containers.refresh();
        docker.images.refresh();
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            const ev = JSON.parse(line);
            if (ev.Type === 'container') docker.containers.refresh();
            if (ev.Type === 'image') {
              docker.images.refresh();
              // A container's image name changes when its tag moves.
              docker.containers.refresh();
            }
          }
        }
      } catch (e) {
        showError(e);
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  })();
}

/** Inspect answers (`/docker/containers/ID/json`, …) fetched for detail pages, by path. */
const inspected = new Map();
/** The answer at `path`, fetched again when `list` has changed since; null until it arrives. */
function inspect(path, list) {
  const have = inspected.get(path);
  if (!have || (have.version !== list.version && !have.busy)) {
    const entry = { version: list.version, busy: true, doc: have?.doc ?? null, error: null };
    inspected.set(path, entry);
    api(path).then((doc) => { entry.doc = doc; }, (e) => { entry.error = e; entry.doc = null; })
      .finally(() => { entry.busy = false; scheduleRender(); });
  }
  return inspected.get(path);
}

// --- usage: each pod's and each container's memory and CPU, once a second -----------

/** The last minute of { cores, memory } points: pods by uid, containers by ID. */
const usage = { pods: new Map(), containers: new Map(), followed: false };
const HISTORY = 60;
/** The usage series of a pod or container; the first read starts the stream. */
function usageOf(kind, key) {
  if (!usage.followed) {
    usage.followed = true;
    followUsage();
  }
  return usage[kind].get(key);
}
function followUsage() {
  const ws = new WebSocket(wsUrl('/wrun/usage'));
  let last = null;
  ws.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    for (const kind of ['pods', 'containers']) {
      const now = msg[kind] || {};
      const before = last?.[kind] || {};
      const series = usage[kind];
      for (const [key, u] of Object.entries(now)) {
        const prev = before[key];
        const cores = prev ? Math.max(0, u.cpuNs - prev.cpuNs) / ((msg.at - last.at) * 1e6) : 0;
        const points = series.get(key) || [];
        points.push({ cores, memory: u.memory });
        if (points.length > HISTORY) points.shift();
        series.set(key, points);
      }
      for (const key of [...series.keys()]) if (!(key in now)) series.delete(key);
    }
    last = msg;
    scheduleRender();
  };
  ws.onclose = () => setTimeout(followUsage, 1000);
}

/** What every pod uses now, summed: the node's use. */
function nodeUse() {
  let cores = 0;
  let memory = 0;
  usageOf('pods', '');
  for (const points of usage.pods.values()) {
    const now = points[points.length - 1];
    cores += now.cores;
    memory += now.memory;
  }
  return { cores, memory };
}

/** A small line chart of the last values, as SVG. */
function sparkline(values, label) {
  const w = 60;
  const hgt = 16;
  const max = Math.max(...values, 1e-9);
  const pts = values.map((v, i) => `${(i * w) / Math.max(values.length - 1, 1)},${hgt - (v / max) * (hgt - 2) - 1}`).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('width', w);
  svg.setAttribute('height', hgt);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', pts);
  svg.append(line);
  return svg;
}

function cpuText(cores) { return `${Math.round(cores * 1000)}m`; }
function memText(b) { return b >= 1048576 ? `${(b / 1048576).toFixed(1)}Mi` : `${Math.ceil(b / 1024)}Ki`; }

/** CPU and memory cells (the latest figure and its chart) of a pod (by uid) or a container (by ID). */
function usageCells(kind, key, name) {
  const points = usageOf(kind, key);
  if (!points?.length) return [h('td', {}), h('td', {})];
  const now = points[points.length - 1];
  return [
    h('td', { 'data-cpu': now.cores }, cpuText(now.cores), ' ', sparkline(points.map((x) => x.cores), `CPU of ${name}`)),
    h('td', { 'data-memory': now.memory }, memText(now.memory), ' ', sparkline(points.map((x) => x.memory), `Memory of ${name}`)),
  ];
}

// --- rendering helpers -------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

function link(href, text) { return h('a', { href }, text); }

function age(ts) {
  if (!ts) return '';
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(ts)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function table(headers, rows, label) {
  return h('table', { 'aria-label': label },
    h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', { 'data-name': r.name || '' }, r.cells.map((c) => (c instanceof Node && c.tagName === 'TD') ? c : h('td', {}, c))))));
}

function statusCell(text) { return h('td', { class: `status-${text}` }, text); }

function detailHref(plural, o) {
  return `/ui/${plural}/${o.metadata.namespace || '-'}/${o.metadata.name}`;
}

/** What `kubectl get pods` shows as STATUS. */
function podStatus(p) {
  if (p.metadata.deletionTimestamp) return 'Terminating';
  for (const c of p.status?.containerStatuses || []) {
    if (c.state?.waiting?.reason) return c.state.waiting.reason;
    if (c.state?.terminated?.reason && p.status.phase !== 'Succeeded') return c.state.terminated.reason;
  }
  return p.status?.phase || 'Pending';
}

function podReady(p) {
  const cs = p.status?.containerStatuses || [];
  const total = p.spec?.containers?.length || cs.length;
  return `${cs.filter((c) => c.ready).length}/${total}`;
}

function restarts(p) {
  return (p.status?.containerStatuses || []).reduce((n, c) => n + (c.restartCount || 0), 0);
}

let errorTimer = null;
function showError(e) {
  const box = document.getElementById('error');
  box.textContent = e instanceof Error ? e.message : String(e);
  box.hidden = false;
  clearTimeout(errorTimer);
  errorTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

async function act(f) {
  try { await f(); } catch (e) { showError(e); }
}

// --- views --------------------------------------------------------------------------

function namespace() { return document.getElementById('namespace').value; }

function overview() {
  const nodes = informer('nodes').list();
  const counts = ['pods', 'replicationcontrollers', 'replicasets', 'deployments', 'jobs', 'services']
    .map((p) => {
      const inf = informer(p);
      const n = inf.list(namespace()).length;
      return [p, !namespace() && inf.total !== null ? inf.total : n];
    });
  const node = nodes[0];
  const pods = informer('pods').list();
  followDocker();
  const card = (href, kind, n, label) => h('a', { class: 'card', href, 'data-kind': kind },
    h('div', { class: 'n' }, n), h('div', { class: 'k' }, label));
  const containers = docker.containers.items;
  const running = containers.filter((c) => c.State === 'running').length;
  const use = nodeUse();
  return [
    h('h1', {}, 'Overview'),
    h('div', { class: 'cards' },
      counts.map(([p, n]) => card(p === 'services' ? '/ui/services' : '/ui/workloads', p, n, KINDS[p].kind + (n === 1 ? '' : 's'))),
      card('/ui/containers', 'containers', `${running}/${containers.length}`, 'Containers running'),
      card('/ui/images', 'images', docker.images.items.length, docker.images.items.length === 1 ? 'Image' : 'Images')),
    h('h2', {}, 'Node'),
    node ? table(['NAME', 'STATUS', 'PODS', 'CPU USED', 'CPU', 'MEMORY USED', 'MEMORY', 'VERSION'], [{
      name: node.metadata.name,
      cells: [
        link(detailHref('nodes', node), node.metadata.name),
        statusCell((node.status?.conditions || []).find((c) => c.type === 'Ready')?.status === 'True' ? 'Ready' : 'NotReady'),
        `${pods.length} / ${node.status?.capacity?.pods ?? '?'}`,
        h('td', { 'data-cpu': use.cores }, cpuText(use.cores)),
        node.status?.capacity?.cpu ?? '',
        h('td', { 'data-memory': use.memory }, memText(use.memory)),
        node.status?.capacity?.memory ?? '',
        node.status?.nodeInfo?.kubeletVersion ?? '',
      ],
    }], 'Node') : h('p', { class: 'muted' }, 'No node yet.'),
    h('h2', {}, 'Namespaces'),
    table(['NAME', 'STATUS', 'PODS', 'AGE'], informer('namespaces').list().map((n) => ({
      name: n.metadata.name,
      cells: [n.metadata.name, statusCell(n.status?.phase || 'Active'),
        pods.filter((p) => p.metadata.namespace === n.metadata.name).length, age(n.metadata.creationTimestamp)],
    })), 'Namespaces'),
  ];
}

/** Where an action's object is, as data attributes. */
function target(plural, o) {
  return { 'data-plural': plural, 'data-ns': o.metadata.namespace || '', 'data-name': o.metadata.name };
}

function scaleControl(plural, o) {
  const id = `scale-${plural}-${o.metadata.namespace || ''}-${o.metadata.name}`;
  return h('td', {},
    h('input', {
      id, type: 'number', min: '0', class: 'replicas', value: o.spec?.replicas ?? 1,
      'aria-label': `Replicas of ${o.metadata.name}`, 'data-action': 'scale', ...target(plural, o),
    }), ' ',
    h('button', { 'data-action': 'scale', 'data-input': id, 'aria-label': `Scale ${o.metadata.name}`, ...target(plural, o) }, 'Scale'));
}

/** What the buttons (and Enter in a replicas field) do. */
const ACTIONS = {
  scale: (el, { plural, ns, name }) => {
    const input = el.tagName === 'INPUT' ? el : document.getElementById(el.dataset.input);
    return api(`${objectPath(plural, ns, name)}/scale`, {
      method: 'PATCH',
      type: 'application/merge-patch+json',
      body: { spec: { replicas: Number(input.value) } },
    });
  },
  delete: async (el, { plural, ns, name }) => {
    if (!confirm(`Delete ${KINDS[plural].kind.toLowerCase()} ${name}?`)) return;
    await api(objectPath(plural, ns, name), { method: 'DELETE' });
    if (plural !== 'pods') navigate(plural === 'services' ? '/ui/services' : '/ui/workloads');
  },
  'show-all': (el, { what }) => { showAll.add(what); scheduleRender(); },
  'docker-start': (el, { id }) => api(`/docker/containers/${encodeURIComponent(id)}/start`, { method: 'POST' }),
  'docker-stop': (el, { id }) => api(`/docker/containers/${encodeURIComponent(id)}/stop`, { method: 'POST' }),
  'docker-restart': (el, { id }) => api(`/docker/containers/${encodeURIComponent(id)}/restart`, { method: 'POST' }),
  'docker-remove': async (el, { id, name }) => {
    if (!confirm(`Delete container ${name}?`)) return;
    await api(`/docker/containers/${encodeURIComponent(id)}?force=1`, { method: 'DELETE' });
    navigate('/ui/containers');
  },
  'image-remove': async (el, { id, name }) => {
    if (!confirm(`Delete image ${name}?`)) return;
    await api(`/docker/images/${encodeURIComponent(id)}`, { method: 'DELETE' });
    navigate('/ui/images');
  },
  logs: (el, { key }) => showLogs(key),
  terminal: (el, { key }) => openTerminal(key),
  restart: (el, { plural, ns, name }) => api(objectPath(plural, ns, name), {
    method: 'PATCH',
    type: 'application/strategic-merge-patch+json',
    body: { spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } } } } },
  }),
};

function runAction(el) {
  const f = ACTIONS[el.dataset.action];
  if (f) act(() => f(el, el.dataset));
}

document.addEventListener('click', (e) => {
  const el = e.target.closest('button[data-action]');
  if (el) runAction(el);
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && e.target.matches('input[data-action]')) runAction(e.target);
});

/** Rows a long table shows until the user asks for every one. */
const PAGE = 100;
/** The long tables the user asked to see whole. */
const showAll = new Set();

/** Says how many rows a long table hides, with a button that shows them. */
function more(what, shown, total) {
  return total > shown ? h('p', { class: 'actions' },
    `Showing ${shown} of ${total} ${what}. `,
    h('button', { 'data-action': 'show-all', 'data-what': what }, `Show all ${total}`)) : null;
}

function workloads() {
  const ns = namespace();
  const podInformer = informer('pods');
  const allPods = podInformer.list(ns);
  const pods = showAll.has('pods') ? allPods : allPods.slice(0, PAGE);
  // While only the first page is known, its count is the server's.
  const podCount = !ns && podInformer.total !== null ? podInformer.total : allPods.length;
  const section = (title, plural, headers, row) => {
    const items = informer(plural).list(ns);
    return [h('h2', {}, title), items.length
      ? table(headers, items.map((o) => ({ name: o.metadata.name, cells: row(o) })), title)
      : h('p', { class: 'muted' }, `No ${title.toLowerCase()}.`)];
  };
  const nameCell = (plural, o) => link(detailHref(plural, o), o.metadata.name);
  const replicaRow = (plural) => (o) => [
    nameCell(plural, o), o.metadata.namespace, o.spec?.replicas ?? 1, o.status?.replicas ?? 0,
    o.status?.readyReplicas ?? 0, age(o.metadata.creationTimestamp), scaleControl(plural, o),
  ];
  return [
    h('h1', {}, 'Workloads'),
    h('h2', {}, 'Pods'),
    !podInformer.synced && podInformer.total === null ? h('p', {}, 'Loading…') : pods.length ? table(['NAME', 'NAMESPACE', 'READY', 'STATUS', 'RESTARTS', 'IP', 'CPU', 'MEMORY', 'AGE'], pods.map((p) => ({
      name: p.metadata.name,
      cells: [nameCell('pods', p), p.metadata.namespace, podReady(p), statusCell(podStatus(p)), restarts(p),
        p.status?.podIP || '', ...usageCells('pods', p.metadata.uid, p.metadata.name), age(p.metadata.creationTimestamp)],
    })), 'Pods') : h('p', { class: 'muted' }, 'No pods.'),
    more('pods', pods.length, podCount),
    section('ReplicationControllers', 'replicationcontrollers',
      ['NAME', 'NAMESPACE', 'DESIRED', 'CURRENT', 'READY', 'AGE', 'SCALE'], replicaRow('replicationcontrollers')),
    section('Deployments', 'deployments', ['NAME', 'NAMESPACE', 'DESIRED', 'CURRENT', 'READY', 'AGE', 'SCALE'], replicaRow('deployments')),
    section('ReplicaSets', 'replicasets', ['NAME', 'NAMESPACE', 'DESIRED', 'CURRENT', 'READY', 'AGE', 'SCALE'], replicaRow('replicasets')),
    section('Jobs', 'jobs', ['NAME', 'NAMESPACE', 'COMPLETIONS', 'AGE'], (o) => [
      nameCell('jobs', o), o.metadata.namespace, `${o.status?.succeeded ?? 0}/${o.spec?.completions ?? 1}`,
      age(o.metadata.creationTimestamp)]),
  ];
}

function ports(svc) {
  return (svc.spec?.ports || []).map((p) => `${p.port}${p.nodePort ? ':' + p.nodePort : ''}/${p.protocol || 'TCP'}`).join(',');
}

function services() {
  const ns = namespace();
  const eps = informer('endpoints');
  const items = informer('services').list(ns);
  return [
    h('h1', {}, 'Services'),
    items.length ? table(['NAME', 'NAMESPACE', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'ENDPOINTS', 'AGE'], items.map((s) => {
      const e = eps.get(s.metadata.namespace, s.metadata.name);
      const addrs = (e?.subsets || []).flatMap((sub) => (sub.addresses || []).flatMap((a) => (sub.ports || []).map((p) => `${a.ip}:${p.port}`)));
      const external = s.spec?.type === 'ExternalName' ? s.spec.externalName
        : (s.status?.loadBalancer?.ingress || []).map((i) => i.ip || i.hostname).join(',') || (s.spec?.type === 'LoadBalancer' ? '<pending>' : '<none>');
      return {
        name: s.metadata.name,
        cells: [link(detailHref('services', s), s.metadata.name), s.metadata.namespace, s.spec?.type || 'ClusterIP',
          s.spec?.clusterIP || '<none>', external, ports(s), addrs.join(', ') || '<none>', age(s.metadata.creationTimestamp)],
      };
    }), 'Services') : h('p', { class: 'muted' }, 'No services.'),
    h('h2', {}, 'Traffic'),
    h('p', { class: 'muted' }, 'Connections the service proxy gave each endpoint, live.'),
    trafficTable(ns),
  ];
}

/** Which pod has this IP (in the namespace). */
function podAt(ns, ip) {
  return informer('pods').list(ns).find((p) => p.status?.podIP === ip);
}

function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

function trafficTable(ns) {
  const rows = [];
  for (const svc of trafficNow().filter((t) => !ns || t.namespace === ns)) {
    for (const port of svc.ports) {
      for (const e of port.endpoints) {
        const pod = podAt(svc.namespace, e.ip);
        rows.push({
          name: pod ? pod.metadata.name : e.ip,
          cells: [`${svc.namespace}/${svc.name}`, `${port.port}/${port.protocol}`,
            pod ? link(detailHref('pods', pod), pod.metadata.name) : '—', `${e.ip}:${e.port}`,
            h('td', { 'data-connections': e.connections }, e.connections), e.active, bytes(e.bytesIn), bytes(e.bytesOut)],
        });
      }
    }
  }
  return rows.length
    ? table(['SERVICE', 'PORT', 'POD', 'ENDPOINT', 'CONNECTIONS', 'OPEN', 'BYTES IN', 'BYTES OUT'], rows, 'Traffic')
    : h('p', { class: 'muted' }, 'No endpoints yet.');
}

function eventRows(events) {
  return events
    .sort((a, b) => Date.parse(b.lastTimestamp || b.eventTime || b.metadata.creationTimestamp)
      - Date.parse(a.lastTimestamp || a.eventTime || a.metadata.creationTimestamp))
    .slice(0, 200)
    .map((e) => ({
      name: e.metadata.name,
      cells: [age(e.lastTimestamp || e.eventTime || e.metadata.creationTimestamp), statusCell(e.type || 'Normal'), e.reason || '',
        `${(e.involvedObject?.kind || '').toLowerCase()}/${e.involvedObject?.name || ''}`, e.count ?? 1,
        h('td', { class: 'msg' }, e.message || '')],
    }));
}

function eventsView() {
  const items = informer('events').list(namespace());
  return [h('h1', {}, 'Events'), items.length
    ? table(['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'COUNT', 'MESSAGE'], eventRows(items), 'Events')
    : h('p', { class: 'muted' }, 'No events.')];
}

// --- the Docker side's views ----------------------------------------------------------

function shortId(id) { return (id || '').replace(/^sha256:/, '').slice(0, 12); }
function containerName(c) { return (c.Names?.[0] || '').replace(/^\//, '') || shortId(c.Id); }
function unixAge(seconds) { return seconds ? age(new Date(seconds * 1000).toISOString()) : ''; }
function containerHref(c) { return `/ui/containers/${encodeURIComponent(containerName(c))}`; }
function imageHref(id) { return `/ui/images/${shortId(id)}`; }

/** PORTS as `docker ps` prints them. */
function dockerPorts(c) {
  return (c.Ports || []).map((p) => (p.PublicPort
    ? `${p.IP || '0.0.0.0'}:${p.PublicPort}->${p.PrivatePort}/${p.Type}` : `${p.PrivatePort}/${p.Type}`)).join(', ');
}

/** Where a Docker action's object is, as data attributes. */
function dockerTarget(kind, id, name) { return { 'data-kind': kind, 'data-id': id, 'data-name': name }; }

function containersView() {
  followDocker();
  const list = docker.containers;
  if (!list.synced) return [h('h1', {}, 'Containers'), h('p', {}, 'Loading…')];
  const all = [...list.items].sort((a, b) => b.Created - a.Created || containerName(a).localeCompare(containerName(b)));
  const items = showAll.has('containers') ? all : all.slice(0, PAGE);
  return [
    h('h1', {}, 'Containers'),
    items.length ? table(['NAME', 'CONTAINER ID', 'IMAGE', 'COMMAND', 'STATE', 'CPU', 'MEMORY', 'PORTS', 'CREATED'], items.map((c) => ({
      name: containerName(c),
      cells: [link(containerHref(c), containerName(c)), shortId(c.Id), c.Image, h('td', { class: 'cmd' }, c.Command || ''),
        statusCell(c.State), ...usageCells('containers', c.Id, containerName(c)), dockerPorts(c), unixAge(c.Created)],
    })), 'Containers') : h('p', { class: 'muted' }, 'No containers.'),
    more('containers', items.length, all.length),
  ];
}

function imagesView() {
  followDocker();
  const list = docker.images;
  if (!list.synced) return [h('h1', {}, 'Images'), h('p', {}, 'Loading…')];
  // A row a tag, as `docker images` prints them; an untagged image once.
  const rows = [];
  for (const img of [...list.items].sort((a, b) => b.Created - a.Created)) {
    const tags = img.RepoTags?.length ? img.RepoTags : ['<none>:<none>'];
    for (const tag of tags) {
      const at = tag.lastIndexOf(':');
      rows.push({
        name: tag,
        cells: [link(imageHref(img.Id), tag.slice(0, at)), tag.slice(at + 1), shortId(img.Id), unixAge(img.Created), bytes(img.Size || 0),
          docker.containers.items.filter((c) => c.ImageID === img.Id).length],
      });
    }
  }
  return [
    h('h1', {}, 'Images'),
    rows.length ? table(['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE', 'CONTAINERS'], rows, 'Images')
      : h('p', { class: 'muted' }, 'No images.'),
  ];
}

/** The YAML of an inspect answer, once js-yaml and the answer are there. */
function inspectYaml(entry) {
  if (entry.error) return h('p', { class: 'muted' }, entry.error.message);
  if (!entry.doc || !yaml) {
    if (!yaml) loadYaml();
    return h('p', {}, 'Loading…');
  }
  return h('pre', { 'aria-label': 'Inspect' }, yaml.dump(entry.doc, { noRefs: true, lineWidth: 120 }));
}

function containerDetail(name) {
  followDocker();
  const list = docker.containers;
  if (!list.synced) return [h('p', {}, 'Loading…')];
  const c = list.items.find((x) => containerName(x) === name || x.Id === name || shortId(x.Id) === name);
  if (!c) return [h('h1', {}, `Container ${name}`), h('p', { class: 'muted' }, 'It is gone (or not created yet).')];
  const info = inspect(`/docker/containers/${encodeURIComponent(c.Id)}/json`, list);
  const running = c.State === 'running';
  const t = dockerTarget('container', c.Id, containerName(c));
  const exit = info.doc?.State && !running ? ` (exit code ${info.doc.State.ExitCode})` : '';
  return [
    h('h1', {}, `Container ${containerName(c)}`),
    h('div', { class: 'actions' },
      running ? h('button', { 'data-action': 'docker-stop', ...t }, 'Stop') : h('button', { 'data-action': 'docker-start', ...t }, 'Start'),
      h('button', { 'data-action': 'docker-restart', ...t }, 'Restart'),
      h('button', { class: 'danger', 'data-action': 'docker-remove', ...t }, 'Delete')),
    h('p', {}, 'State: ', h('span', { class: `status-${c.State}`, 'data-status': c.State }, c.State), exit,
      ' · image ', link(imageHref(c.ImageID), c.Image), ` · ID ${shortId(c.Id)}`,
      dockerPorts(c) ? ` · ports ${dockerPorts(c)}` : ''),
    running ? table(['CPU', 'MEMORY'], [{ name: containerName(c), cells: usageCells('containers', c.Id, containerName(c)) }], 'Usage') : null,
    ...(running ? containerTools(c) : containerTools(c).slice(0, 3)),
    h('h2', {}, 'Inspect'),
    inspectYaml(info),
  ];
}

function imageDetail(ref) {
  followDocker();
  const list = docker.images;
  if (!list.synced) return [h('p', {}, 'Loading…')];
  const img = list.items.find((i) => shortId(i.Id) === ref || i.Id === ref);
  if (!img) return [h('h1', {}, `Image ${ref}`), h('p', { class: 'muted' }, 'It is gone.')];
  const id = encodeURIComponent(img.Id);
  const info = inspect(`/docker/images/${id}/json`, list);
  const hist = inspect(`/docker/images/${id}/history`, list);
  const users = docker.containers.items.filter((c) => c.ImageID === img.Id);
  const title = img.RepoTags?.[0] || shortId(img.Id);
  return [
    h('h1', {}, `Image ${title}`),
    h('div', { class: 'actions' }, h('button', { class: 'danger', 'data-action': 'image-remove', ...dockerTarget('image', img.Id, title) }, 'Delete')),
    h('p', {}, `ID ${shortId(img.Id)} · ${bytes(img.Size || 0)} · created ${unixAge(img.Created)} ago`,
      img.RepoTags?.length ? ` · tags ${img.RepoTags.join(', ')}` : ''),
    h('h2', {}, 'Containers'),
    users.length ? table(['NAME', 'STATE'], users.map((c) => ({ name: containerName(c), cells: [link(containerHref(c), containerName(c)), statusCell(c.State)] })), 'Containers of the image')
      : h('p', { class: 'muted' }, 'No container uses it.'),
    h('h2', {}, 'History'),
    hist.doc ? table(['IMAGE', 'CREATED', 'CREATED BY', 'SIZE', 'COMMENT'], hist.doc.map((step, i) => ({
      name: String(i),
      cells: [step.Id === '<missing>' ? '<missing>' : shortId(step.Id), unixAge(step.Created), h('td', { class: 'msg' }, step.CreatedBy || ''),
        bytes(step.Size || 0), step.Comment || ''],
    })), 'History') : h('p', {}, hist.error ? hist.error.message : 'Loading…'),
    h('h2', {}, 'Inspect'),
    inspectYaml(info),
  ];
}

/** An object's page: its state, its events, its YAML, and what can be done to it. */
function detail(plural, ns, name) {
  const k = KINDS[plural];
  if (!k) return [h('h1', {}, 'Not found'), h('p', {}, `wrun's dashboard does not show ${plural}.`)];
  const o = informer(plural).get(k.ns ? ns : '', name);
  if (!informer(plural).synced) return [h('p', {}, 'Loading…')];
  if (!o) return [h('h1', {}, `${k.kind} ${name}`), h('p', { class: 'muted' }, 'It is gone (or not created yet).')];
  const actions = h('div', { class: 'actions' },
    h('button', { class: 'danger', 'data-action': 'delete', ...target(plural, o) }, 'Delete'),
    plural === 'deployments' ? h('button', { 'data-action': 'restart', ...target(plural, o) }, 'Restart rollout') : null,
    h('a', { href: `/ui/edit/${plural}/${o.metadata.namespace || '-'}/${name}` }, 'Edit YAML'));
  const events = informer('events').list(o.metadata.namespace || '')
    .filter((e) => e.involvedObject?.uid === o.metadata.uid || (e.involvedObject?.name === name && e.involvedObject?.kind === k.kind));
  const extra = [];
  if (k.scale) {
    extra.push(h('p', {}, `Replicas: ${o.status?.readyReplicas ?? 0} ready of ${o.spec?.replicas ?? 1} `),
      table(['SCALE'], [{ name, cells: [scaleControl(plural, o)] }], 'Scale'));
  }
  if (plural === 'pods') {
    extra.push(h('p', {}, 'Status: ', h('span', { class: `status-${podStatus(o)}`, 'data-status': podStatus(o) }, podStatus(o)),
      ` · IP ${o.status?.podIP || 'none yet'} · node ${o.spec?.nodeName || 'none yet'}`));
    extra.push(...podTools(o));
  }
  return [
    h('h1', {}, `${k.kind} ${o.metadata.namespace ? o.metadata.namespace + '/' : ''}${name}`),
    actions,
    ...extra,
    h('h2', {}, 'Events'),
    events.length ? table(['LAST SEEN', 'TYPE', 'REASON', 'OBJECT', 'COUNT', 'MESSAGE'], eventRows(events), 'Events')
      : h('p', { class: 'muted' }, 'No events.'),
    h('h2', {}, 'YAML'),
    yaml ? h('pre', { 'aria-label': 'YAML' }, yaml.dump(withoutManagedFields(o), { noRefs: true, lineWidth: 120 }))
      : (loadYaml(), h('p', {}, 'Loading…')),
  ];
}

/** The object as `kubectl get -o yaml` shows it: without managedFields. */
function withoutManagedFields(o) {
  const copy = structuredClone(o);
  delete copy.metadata.managedFields;
  return copy;
}

/** What the logs and terminal panels on the page act on, by key (a pod's uid, a container's ID). */
const tools = new Map();

/** The query of a terminal's exec: every stream, a TTY, and `argv` as its commands. */
function execQuery(argv, more = {}) {
  const q = new URLSearchParams({ ...more, stdin: 1, stdout: 1, stderr: 1, tty: 1 });
  for (const word of argv) q.append('command', word);
  return q;
}

/** A pod's logs and terminal: for any of its containers, through the Kubernetes API. */
function podTools(o) {
  const ns = o.metadata.namespace;
  const name = o.metadata.name;
  return streamTools({
    key: o.metadata.uid,
    containers: (o.spec?.containers || []).map((c) => c.name),
    logsUrl: (container, follow, timestamps) => `${objectPath('pods', ns, name)}/log?${new URLSearchParams({ container, follow, timestamps, tailLines: 500 })}`,
    execUrl: (container, argv) => `${objectPath('pods', ns, name)}/exec?${execQuery(argv, { container })}`,
  });
}

/** A Docker container's logs (the Docker API's) and a terminal (wrun's exec over WebSocket). */
function containerTools(c) {
  const id = encodeURIComponent(c.Id);
  return streamTools({
    key: c.Id,
    containers: null,
    logsUrl: (_, follow, timestamps) => `/docker/containers/${id}/logs?${new URLSearchParams({ follow: follow ? 1 : 0, stdout: 1, stderr: 1, timestamps: timestamps ? 1 : 0, tail: 500 })}`,
    execUrl: (_, argv) => `/wrun/containers/${id}/exec?${execQuery(argv)}`,
  });
}

/** Logs (followed, with timestamps) and a terminal, as panels. */
function streamTools(t) {
  tools.set(t.key, t);
  // Ids carry the key, so another object's page gets fresh fields.
  const k = t.key;
  const pick = (id) => (t.containers ? h('select', { id, 'aria-label': 'Container', 'data-user': true },
    t.containers.map((c) => h('option', { value: c }, c))) : null);
  return [
    h('h2', {}, 'Logs'),
    h('div', { class: 'actions' },
      pick(`logs-container-${k}`),
      h('label', {}, h('input', { type: 'checkbox', id: `logs-follow-${k}`, checked: true, 'data-user': true }), ' follow'),
      h('label', {}, h('input', { type: 'checkbox', id: `logs-timestamps-${k}`, checked: true, 'data-user': true }), ' timestamps'),
      h('button', { 'data-action': 'logs', 'data-key': k }, 'Show logs')),
    h('pre', { id: `logs-${k}`, class: 'logs', 'aria-label': 'Logs', 'aria-live': 'polite', 'data-keep': true }),
    h('h2', {}, 'Terminal'),
    h('div', { class: 'actions' },
      pick(`term-container-${k}`),
      h('input', { id: `term-command-${k}`, value: 'sh', 'aria-label': 'Command', 'data-user': true }),
      h('button', { 'data-action': 'terminal', 'data-key': k }, 'Open terminal')),
    h('div', { id: `terminal-${k}`, class: 'terminal', 'aria-label': 'Terminal', 'data-keep': true }),
  ];
}

/** What streams into the page now (logs, a terminal), closed when the page changes. */
const streams = { logs: null, terminal: null };
function closeStreams() {
  streams.logs?.abort();
  streams.terminal?.close();
  streams.logs = null;
  streams.terminal = null;
}

/**
 * Splits the Docker API's multiplexed stream (a header of 8 bytes: the
 * stream, three zeros, the length big-endian; then the bytes) and hands
 * each frame's bytes on.
 */
function demuxer(onData) {
  let rest = new Uint8Array(0);
  return (chunk) => {
    const buf = new Uint8Array(rest.length + chunk.length);
    buf.set(rest);
    buf.set(chunk, rest.length);
    let at = 0;
    while (buf.length - at >= 8) {
      const size = new DataView(buf.buffer, at + 4, 4).getUint32(0);
      if (buf.length - at - 8 < size) break;
      onData(buf.subarray(at + 8, at + 8 + size));
      at += 8 + size;
    }
    rest = buf.slice(at);
  };
}

async function showLogs(key) {
  const t = tools.get(key);
  streams.logs?.abort();
  const ctl = new AbortController();
  streams.logs = ctl;
  const out = document.getElementById(`logs-${key}`);
  out.textContent = '';
  const container = document.getElementById(`logs-container-${key}`)?.value;
  const url = t.logsUrl(container, document.getElementById(`logs-follow-${key}`).checked,
    document.getElementById(`logs-timestamps-${key}`).checked);
  const r = await fetch(url, { signal: ctl.signal });
  if (!r.ok) throw new ApiError(`logs: ${(await r.text()) || r.status}`);
  const text = new TextDecoder();
  const show = (bytes) => {
    out.append(text.decode(bytes, { stream: true }));
    out.scrollTop = out.scrollHeight;
  };
  const take = (r.headers.get('content-type') || '').includes('multiplexed') ? demuxer(show) : show;
  const reader = r.body.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      take(value);
    }
  } catch (e) {
    if (e.name !== 'AbortError') throw e;
  }
}

/**
 * A terminal: `kubectl exec -it` from the browser, over WebSocket exec
 * (v5.channel.k8s.io: a channel byte, then data).
 */
async function openTerminal(key) {
  const t = tools.get(key);
  streams.terminal?.close();
  const { Terminal } = await loadXterm();
  const box = document.getElementById(`terminal-${key}`);
  box.replaceChildren();
  const term = new Terminal({ fontSize: 13, convertEol: false, cursorBlink: true });
  term.open(box);
  const argv = document.getElementById(`term-command-${key}`).value.trim().split(/\s+/).filter(Boolean);
  const container = document.getElementById(`term-container-${key}`)?.value;
  const ws = new WebSocket(wsUrl(t.execUrl(container, argv)), ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
  ws.binaryType = 'arraybuffer';
  const enc = new TextEncoder();
  const send = (channel, bytes) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    const msg = new Uint8Array(bytes.length + 1);
    msg[0] = channel;
    msg.set(bytes, 1);
    ws.send(msg);
  };
  ws.onopen = () => {
    box.dataset.connected = 'true';
    send(4, enc.encode(JSON.stringify({ Width: term.cols, Height: term.rows })));
    term.focus();
  };
  ws.onmessage = (m) => {
    const data = new Uint8Array(m.data);
    if (data[0] === 1 || data[0] === 2) term.write(data.subarray(1));
    else if (data[0] === 3) {
      const status = JSON.parse(new TextDecoder().decode(data.subarray(1)));
      term.write(`\r\n[${status.status === 'Success' ? 'exited' : status.message || 'failed'}]\r\n`);
    }
  };
  ws.onclose = () => {
    box.dataset.connected = 'false';
    term.write('\r\n[connection closed]\r\n');
  };
  term.onData((d) => send(0, enc.encode(d)));
  term.onResize(({ cols, rows }) => send(4, enc.encode(JSON.stringify({ Width: cols, Height: rows }))));
  streams.terminal = { close: () => { ws.close(); term.dispose(); } };
}

/** A form that sends YAML: new objects, or a changed one. */
function yamlForm({ title, initial, submit, label }) {
  const area = h('textarea', { 'aria-label': 'YAML', spellcheck: 'false' });
  area.value = initial;
  const file = h('input', { type: 'file', accept: '.yaml,.yml,.json', 'aria-label': 'Upload a file' });
  file.addEventListener('change', async () => { if (file.files[0]) area.value = await file.files[0].text(); });
  const result = h('p', { role: 'status' });
  const form = h('form', {
    onsubmit: (e) => {
      e.preventDefault();
      act(async () => {
        const { loadAll } = yaml || await loadYaml();
        const docs = loadAll(area.value).filter((d) => d && typeof d === 'object');
        if (!docs.length) throw new Error('the YAML holds no object');
        const done = [];
        for (const d of docs) done.push(await submit(d));
        result.textContent = done.join('; ');
      });
    },
  }, area, h('div', { class: 'actions' }, h('button', { type: 'submit' }, label), file), result);
  return [h('h1', {}, title), form];
}

async function createObject(doc) {
  const plural = pluralOfKind(doc.apiVersion, doc.kind);
  if (!plural) throw new Error(`wrun's dashboard cannot create ${doc.apiVersion}/${doc.kind}`);
  const ns = KINDS[plural].ns ? (doc.metadata?.namespace || namespace() || 'default') : '';
  const made = await api(objectPath(plural, ns), { method: 'POST', body: doc });
  return `${doc.kind.toLowerCase()}/${made.metadata.name} created`;
}

function createView() {
  loadYaml();
  return yamlForm({ title: 'Create', initial: '', label: 'Create', submit: createObject });
}

function editView(plural, ns, name) {
  const o = KINDS[plural] && informer(plural).get(KINDS[plural].ns ? ns : '', name);
  if (!yaml) {
    loadYaml();
    return [h('p', {}, 'Loading…')];
  }
  if (!o) return [h('p', {}, 'Loading…')];
  const copy = withoutManagedFields(o);
  return yamlForm({
    title: `Edit ${KINDS[plural].kind} ${name}`,
    initial: yaml.dump(copy, { noRefs: true, lineWidth: 120 }),
    label: 'Save',
    submit: async (doc) => {
      await api(objectPath(plural, o.metadata.namespace, name), { method: 'PUT', body: doc });
      navigate(detailHref(plural, o));
      return 'saved';
    },
  });
}

// --- routing ------------------------------------------------------------------------

/** The view for the current URL; views that edit are not re-rendered on changes. */
function route() {
  const parts = location.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  if (parts[0] !== 'ui' || parts.length < 2) return { view: overview, live: true, nav: '/ui/overview' };
  const [, what, a, b, c] = parts;
  switch (what) {
    case 'overview': return { view: overview, live: true, nav: '/ui/overview' };
    case 'workloads': return { view: workloads, live: true, nav: '/ui/workloads' };
    case 'services': return { view: services, live: true, nav: '/ui/services' };
    case 'events': return { view: eventsView, live: true, nav: '/ui/events' };
    case 'containers': return a ? { view: () => containerDetail(a), live: true, nav: '/ui/containers' }
      : { view: containersView, live: true, nav: '/ui/containers' };
    case 'images': return a ? { view: () => imageDetail(a), live: true, nav: '/ui/images' }
      : { view: imagesView, live: true, nav: '/ui/images' };
    case 'create': return { view: createView, live: false, nav: '/ui/create' };
    case 'edit': return { view: () => editView(a, b === '-' ? '' : b, c), live: false };
    default: return { view: () => detail(what, a === '-' ? '' : a, b), live: true };
  }
}

let renderQueued = false;
/** The path of the form on the page, which changes elsewhere must not wipe. */
let formShown = null;
function render() {
  renderQueued = false;
  const r = route();
  if (!r.live && formShown === location.pathname) return;
  const main = document.getElementById('main');
  const nodes = r.view().flat(Infinity).filter(Boolean);
  if (r.live) {
    const next = main.cloneNode(false);
    next.append(...nodes);
    morphdom(main, next, {
      // A field being typed in keeps what the user typed; the user's
      // choices and what streams in (logs, a terminal) are left alone.
      onBeforeElUpdated: (from) => !(from === document.activeElement && from.tagName === 'INPUT')
        && !from.hasAttribute('data-keep') && !from.hasAttribute('data-user'),
    });
  } else {
    main.replaceChildren(...nodes);
  }
  formShown = !r.live && nodes.some((n) => n.tagName === 'FORM') ? location.pathname : null;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(render);
}

function navigate(href) {
  history.pushState(null, '', href);
  closeStreams();
  formShown = null;
  render();
  document.getElementById('main').focus();
}

document.addEventListener('click', (e) => {
  const a = e.target.closest('a');
  if (!a || !a.getAttribute('href')?.startsWith('/ui/') || e.ctrlKey || e.metaKey || e.shiftKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href'));
});
window.addEventListener('popstate', () => { closeStreams(); formShown = null; render(); });

async function start() {
  // Informers start when a view first reads them, so the first view waits
  // only for what it shows (a thousand pods' events are not fetched for
  // the workloads view).
  const select = document.getElementById('namespace');
  informer('namespaces').listeners.add(() => {
    const have = new Set([...select.options].map((o) => o.value));
    for (const n of informer('namespaces').list()) {
      if (!have.has(n.metadata.name)) select.append(h('option', { value: n.metadata.name }, n.metadata.name));
    }
  });
  select.addEventListener('change', scheduleRender);
  // Ages move on with no change to watch.
  setInterval(() => { if (route().live) scheduleRender(); }, 5000);
  if (location.pathname === '/') history.replaceState(null, '', '/ui/overview');
  render();
}

start();
