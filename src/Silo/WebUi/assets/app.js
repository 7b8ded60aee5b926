// The web UI: a few views over the REST API (the same one Flink's tools use), re-rendered every few seconds.
'use strict';

const view = document.getElementById('view');
const message = document.getElementById('message');
let timer = null;

const esc = text => String(text ?? '').replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
const time = ms => ms > 0 ? new Date(ms).toLocaleString() : '–';
const duration = ms => ms == null || ms < 0 ? '–' : ms < 1000 ? `${ms} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60000)} min ${Math.round(ms % 60000 / 1000)} s`;
const bytes = n => n == null ? '–' : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KiB` : n < 1073741824 ? `${(n / 1048576).toFixed(1)} MiB` : `${(n / 1073741824).toFixed(2)} GiB`;
const state = s => `<span class="state ${esc(s)}">${esc(s)}</span>`;

async function api(path, options) {
  const response = await fetch(path, { credentials: 'same-origin', headers: { 'Accept': 'application/json', 'Content-Type': 'application/json' }, ...options });
  const body = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) {
    const errors = body && body.errors ? body.errors.join(' ') : `${response.status} ${response.statusText}`;
    throw new Error(errors);
  }
  return body;
}

function show(text, isError) {
  message.hidden = false;
  message.textContent = text;
  message.className = isError ? 'error' : '';
}

function confirmAction(text) {
  const dialog = document.getElementById('confirm');
  document.getElementById('confirm-text').textContent = text;
  return new Promise(resolve => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
  });
}

// Routes: #/ (jobs), #/jobs/<id> (overview), #/jobs/<id>/checkpoints[/<checkpoint id>[/<vertex id>]].
async function route() {
  clearTimeout(timer);
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(p => p).map(decodeURIComponent);
  try {
    if (parts[0] === 'jobs' && parts[1]) {
      await jobPage(parts[1], parts[2] === 'checkpoints' ? 'checkpoints' : 'overview', parts[3], parts[4]);
    } else {
      await jobsPage();
    }
  } catch (error) {
    view.innerHTML = `<p class="error">${esc(error.message)}</p>`;
  }
  timer = setTimeout(route, 3000);
}

async function jobsPage() {
  const [overview, jobs] = await Promise.all([api('/overview'), api('/jobs/overview')]);
  document.getElementById('cluster').textContent = `${overview.taskmanagers} silo(s) · ${overview['jobs-running']} running`;
  document.title = 'Platform: jobs';
  view.innerHTML = `<h1>Jobs</h1>
    <table id="jobs"><thead><tr><th>Name</th><th>Id</th><th>State</th><th>Started</th><th>Duration</th><th>Subtasks running</th></tr></thead><tbody>
    ${jobs.jobs.map(j => `<tr class="clickable" data-job="${esc(j.jid)}"><td>${esc(j.name)}</td><td><code>${esc(j.jid)}</code></td><td>${state(j.state)}</td>
      <td>${time(j['start-time'])}</td><td>${duration(j.duration)}</td><td>${j.tasks.RUNNING ?? 0} / ${Object.values(j.tasks).reduce((a, b) => a + b, 0)}</td></tr>`).join('')
      || '<tr><td colspan="6" class="muted">No jobs yet: start one with the CLI (platform run word-count) or POST /jobs.</td></tr>'}
    </tbody></table>`;
  view.querySelectorAll('tr[data-job]').forEach(row => row.addEventListener('click', () => { location.hash = `#/jobs/${encodeURIComponent(row.dataset.job)}`; }));
}

async function jobPage(jobId, tab, checkpointId, vertexId) {
  const job = await api(`/jobs/${encodeURIComponent(jobId)}`);
  document.title = `Platform: ${job.name}`;
  const running = job.state === 'RUNNING';
  const base = `#/jobs/${encodeURIComponent(jobId)}`;
  let body = '';
  if (tab === 'checkpoints') {
    body = await checkpointsTab(jobId, job, checkpointId, vertexId);
  } else {
    body = overviewTab(job);
  }
  view.innerHTML = `<h1>${esc(job.name)} ${state(job.state)}</h1>
    <p class="muted"><code>${esc(job.jid)}</code> · started ${time(job['start-time'])} · ${duration(job.duration)} · attempt ${job.attempt}, ${job.restarts} restart(s)</p>
    ${job.failure ? `<p class="error">${esc(job.failure)}</p>` : ''}
    <div class="actions">
      <button id="savepoint" ${job.isStoppable ? '' : 'disabled'}>Trigger savepoint</button>
      <button id="stop" ${job.isStoppable ? '' : 'disabled'}>Stop with savepoint</button>
      <button id="cancel" class="danger" ${running || job.state === 'RESTARTING' || job.state === 'CREATED' ? '' : 'disabled'}>Cancel job</button>
    </div>
    <div class="tabs"><a href="${base}" class="${tab === 'overview' ? 'active' : ''}" id="tab-overview">Overview</a><a href="${base}/checkpoints" class="${tab === 'checkpoints' ? 'active' : ''}" id="tab-checkpoints">Checkpoints</a></div>
    ${body}`;
  document.getElementById('savepoint').addEventListener('click', () => savepoint(jobId, false));
  document.getElementById('stop').addEventListener('click', () => savepoint(jobId, true));
  document.getElementById('cancel').addEventListener('click', () => cancel(jobId));
  view.querySelectorAll('tr[data-checkpoint]').forEach(row => row.addEventListener('click', () => { location.hash = `${base}/checkpoints/${row.dataset.checkpoint}`; }));
  view.querySelectorAll('tr[data-vertex]').forEach(row => row.addEventListener('click', () => { location.hash = `${base}/checkpoints/${checkpointId}/${row.dataset.vertex}`; }));
}

function overviewTab(job) {
  return `<h2>Job graph</h2>${graph(job)}
    <h2>Vertices</h2>
    <table id="vertices"><thead><tr><th>Id</th><th>Task</th><th>Parallelism</th><th>State</th><th>Records in</th><th>Records out</th><th>Back pressure</th></tr></thead><tbody>
    ${job.vertices.map(v => `<tr><td>${esc(v.id)}</td><td>${esc(v.name)}</td><td>${v.parallelism}</td><td>${state(v.status)}</td><td>${v.metrics['read-records'].toLocaleString()}</td>
      <td>${v.metrics['write-records'].toLocaleString()}</td><td class="bp-${esc(v['backpressure-level'])}">${esc(v['backpressure-level'])}${v.metrics.backPressuredTimeMsPerSecond != null ? ` (${Math.round(v.metrics.backPressuredTimeMsPerSecond)} ms/s)` : ''}</td></tr>`).join('')}
    </tbody></table>
    <h2>Subtasks</h2>
    <table id="subtasks"><thead><tr><th>Task</th><th>Subtask</th><th>State</th><th>Silo</th><th>Key groups</th><th>Records in</th><th>Records out</th><th>Back pressure</th></tr></thead><tbody>
    ${job.vertices.flatMap(v => v.subtasks.map(s => `<tr><td>${esc(v.name)}</td><td>${s.subtask}</td><td>${state(s.status)}</td><td>${esc(s.host ?? '–')}</td><td>${esc(s['key-groups'] ?? '–')}</td>
      <td>${s['read-records'].toLocaleString()}</td><td>${s['write-records'].toLocaleString()}</td><td>${esc(s['backpressure-level'])}</td></tr>`)).join('')}
    </tbody></table>`;
}

// Vertices in columns by their distance from the sources, edges labelled with how they distribute records.
function graph(job) {
  const nodes = job.plan.nodes;
  const depth = {};
  const depthOf = id => {
    if (depth[id] != null) return depth[id];
    const node = nodes.find(n => n.id === id);
    depth[id] = node.inputs.length === 0 ? 0 : 1 + Math.max(...node.inputs.map(i => depthOf(i.id)));
    return depth[id];
  };
  nodes.forEach(n => depthOf(n.id));
  const columns = {};
  nodes.forEach(n => (columns[depth[n.id]] ??= []).push(n));
  const width = 230, height = 62, gapX = 90, gapY = 24;
  const position = {};
  Object.entries(columns).forEach(([d, column]) => column.forEach((n, i) => { position[n.id] = { x: 20 + d * (width + gapX), y: 20 + i * (height + gapY) }; }));
  const svgWidth = 40 + (Object.keys(columns).length) * (width + gapX) - gapX;
  const svgHeight = 40 + Math.max(...Object.values(columns).map(c => c.length)) * (height + gapY) - gapY;
  const vertex = id => job.vertices.find(v => v.id === id);
  const edges = nodes.flatMap(n => n.inputs.map(i => {
    const from = position[i.id], to = position[n.id];
    const x1 = from.x + width, y1 = from.y + height / 2, x2 = to.x - 6, y2 = to.y + height / 2;
    return `<path class="edge" d="M${x1},${y1} C${x1 + 40},${y1} ${x2 - 40},${y2} ${x2},${y2}"/><text class="edge-label" x="${(x1 + x2) / 2 - 24}" y="${(y1 + y2) / 2 - 6}">${esc(i.ship_strategy)}</text>`;
  })).join('');
  const boxes = nodes.map(n => {
    const p = position[n.id], v = vertex(n.id);
    const name = n.description.length > 34 ? n.description.slice(0, 33) + '…' : n.description;
    return `<g class="node ${esc(v?.['backpressure-level'] ?? 'ok')}" data-vertex-id="${esc(n.id)}"><title>${esc(n.description)}</title><rect x="${p.x}" y="${p.y}" width="${width}" height="${height}" rx="4"/>
      <text x="${p.x + 10}" y="${p.y + 20}" font-weight="600">${esc(name)}</text>
      <text x="${p.x + 10}" y="${p.y + 38}">parallelism ${n.parallelism} · ${esc(v?.status ?? '')}</text>
      <text x="${p.x + 10}" y="${p.y + 54}">back pressure: ${esc(v?.['backpressure-level'] ?? 'ok')}</text></g>`;
  }).join('');
  return `<svg class="graph" id="job-graph" viewBox="0 0 ${svgWidth} ${svgHeight}" style="max-height:${svgHeight}px">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#8796ad"/></marker></defs>${edges}${boxes}</svg>`;
}

async function checkpointsTab(jobId, job, checkpointId, vertexId) {
  let stats;
  try {
    stats = await api(`/jobs/${encodeURIComponent(jobId)}/checkpoints`);
  } catch (error) {
    return `<p class="muted">${esc(error.message)}</p>`;
  }
  const c = stats.counts, s = stats.summary;
  const row = (name, summary, format) => `<tr><td>${name}</td><td>${format(summary.min)}</td><td>${format(summary.avg)}</td><td>${format(summary.p99)}</td><td>${format(summary.max)}</td></tr>`;
  let details = '';
  if (checkpointId) {
    details = await checkpointDetails(jobId, checkpointId, vertexId);
  }
  return `<h2>Counts</h2>
    <div class="counts" id="checkpoint-counts">
      <div class="count">Triggered<b id="count-total">${c.total}</b></div><div class="count">In progress<b id="count-in-progress">${c.in_progress}</b></div>
      <div class="count">Completed<b id="count-completed">${c.completed}</b></div><div class="count">Failed<b id="count-failed">${c.failed}</b></div>
      <div class="count">Restored<b id="count-restored">${c.restored}</b></div></div>
    <p class="muted">Latest completed: ${stats.latest.completed ? `${stats.latest.completed.id} at ${time(stats.latest.completed.latest_ack_timestamp)}` : '–'} ·
      latest savepoint: ${stats.latest.savepoint ? esc(stats.latest.savepoint.external_path) : '–'} ·
      latest failure: ${stats.latest.failed ? `${stats.latest.failed.id}: ${esc(stats.latest.failed.failure_message)}` : '–'}</p>
    <h2>Durations and sizes</h2>${chart(stats.history)}
    <h2>Summary (completed checkpoints in the history)</h2>
    <table id="checkpoint-summary"><thead><tr><th></th><th>Min</th><th>Average</th><th>p99</th><th>Max</th></tr></thead><tbody>
      ${row('End-to-end duration', s.end_to_end_duration, duration)}${row('Checkpointed data size', s.checkpointed_size, bytes)}${row('Full state size', s.state_size, bytes)}${row('Alignment (longest subtask)', s.alignment_duration, duration)}
    </tbody></table>
    <h2>History</h2>
    <table id="checkpoint-history"><thead><tr><th>Id</th><th>Type</th><th>Status</th><th>Triggered</th><th>End to end</th><th>Checkpointed</th><th>Full size</th><th>Acknowledged</th><th>Failure</th></tr></thead><tbody>
    ${stats.history.map(h => `<tr class="clickable${String(h.id) === checkpointId ? ' selected' : ''}" data-checkpoint="${h.id}"><td>${h.id}</td><td>${esc(h.checkpoint_type)}</td><td>${state(h.status)}</td><td>${time(h.trigger_timestamp)}</td>
      <td>${duration(h.end_to_end_duration)}</td><td>${bytes(h.checkpointed_size)}</td><td>${bytes(h.state_size)}</td><td>${h.num_acknowledged_subtasks} / ${h.num_subtasks}</td><td>${esc(h.failure_message ?? '')}</td></tr>`).join('')
      || '<tr><td colspan="9" class="muted">No checkpoint yet.</td></tr>'}
    </tbody></table>${details}`;
}

// Bars: end-to-end duration per checkpoint (failed ones red); line: checkpointed size. Oldest on the left.
function chart(history) {
  const points = history.filter(h => h.status !== 'IN_PROGRESS').slice().reverse();
  if (points.length === 0) return '<p class="muted" id="checkpoint-chart-empty">No completed checkpoint yet.</p>';
  const width = 900, height = 200, left = 60, right = 70, top = 10, bottom = 30;
  const maxDuration = Math.max(1, ...points.map(p => p.end_to_end_duration));
  const maxSize = Math.max(1, ...points.map(p => p.checkpointed_size));
  const step = (width - left - right) / points.length;
  const y = (value, max) => top + (height - top - bottom) * (1 - value / max);
  const bars = points.map((p, i) => `<rect class="bar ${esc(p.status)}" data-checkpoint-id="${p.id}" x="${left + i * step + step * 0.15}" y="${y(p.end_to_end_duration, maxDuration)}" width="${step * 0.7}" height="${height - bottom - y(p.end_to_end_duration, maxDuration)}"><title>checkpoint ${p.id}: ${duration(p.end_to_end_duration)}, ${bytes(p.checkpointed_size)}</title></rect>`).join('');
  const line = points.map((p, i) => `${left + i * step + step / 2},${y(p.checkpointed_size, maxSize)}`).join(' ');
  const dots = points.map((p, i) => `<circle class="dot" cx="${left + i * step + step / 2}" cy="${y(p.checkpointed_size, maxSize)}" r="3"/>`).join('');
  const labels = points.map((p, i) => points.length <= 20 || i % Math.ceil(points.length / 20) === 0 ? `<text x="${left + i * step + step / 2 - 6}" y="${height - 12}">${p.id}</text>` : '').join('');
  return `<svg class="chart" id="checkpoint-chart" viewBox="0 0 ${width} ${height}" style="max-height:${height}px">
    <text x="4" y="${top + 10}">${duration(maxDuration)}</text><text x="4" y="${height - bottom}">0</text>
    <text x="${width - right + 6}" y="${top + 10}">${bytes(maxSize)}</text>${bars}<polyline class="size" points="${line}"/>${dots}${labels}</svg>
    <p class="legend">Bars: end-to-end duration (left axis); line: checkpointed data size (right axis); x: checkpoint id.</p>`;
}

async function checkpointDetails(jobId, checkpointId, vertexId) {
  const base = `/jobs/${encodeURIComponent(jobId)}/checkpoints/details/${encodeURIComponent(checkpointId)}`;
  const detail = await api(base);
  let subtasks = '';
  if (vertexId) {
    const task = await api(`${base}/subtasks/${encodeURIComponent(vertexId)}`);
    subtasks = `<h2>Subtasks of vertex ${esc(vertexId)} in checkpoint ${esc(checkpointId)}</h2>
      <table id="checkpoint-subtasks"><thead><tr><th>Subtask</th><th>Status</th><th>Acknowledged</th><th>End to end</th><th>Sync</th><th>Async</th><th>Alignment</th><th>Checkpointed</th><th>Full size</th></tr></thead><tbody>
      ${task.subtasks.map(s => `<tr><td>${s.index}</td><td>${esc(s.status)}${s.finished ? ' (finished)' : ''}</td><td>${time(s.ack_timestamp)}</td><td>${duration(s.end_to_end_duration)}</td>
        <td>${duration(s.checkpoint?.sync)}</td><td>${duration(s.checkpoint?.async)}</td><td>${duration(s.alignment?.duration)}</td><td>${bytes(s.checkpointed_size)}</td><td>${bytes(s.state_size)}</td></tr>`).join('')}
      </tbody></table>`;
  }
  return `<h2>Checkpoint ${esc(checkpointId)} per task</h2>
    <table id="checkpoint-tasks"><thead><tr><th>Vertex</th><th>Status</th><th>Acknowledged</th><th>End to end</th><th>Checkpointed</th><th>Full size</th></tr></thead><tbody>
    ${Object.entries(detail.tasks).map(([id, t]) => `<tr class="clickable${id === vertexId ? ' selected' : ''}" data-vertex="${esc(id)}"><td>${esc(id)}</td><td>${state(t.status)}</td><td>${t.num_acknowledged_subtasks} / ${t.num_subtasks}</td>
      <td>${duration(t.end_to_end_duration)}</td><td>${bytes(t.checkpointed_size)}</td><td>${bytes(t.state_size)}</td></tr>`).join('')}
    </tbody></table>${subtasks}`;
}

async function savepoint(jobId, stop) {
  const what = stop ? 'Stop the job with a savepoint? Sources stop after it; the job finishes, and a new job can resume from the savepoint.' : 'Take a savepoint of the job now?';
  if (!await confirmAction(what)) return;
  try {
    const trigger = await api(`/jobs/${encodeURIComponent(jobId)}/${stop ? 'stop' : 'savepoints'}`, { method: 'POST', body: JSON.stringify({}) });
    show(`${stop ? 'Stop with savepoint' : 'Savepoint'} ${trigger['request-id']} in progress…`);
    for (;;) {
      await new Promise(r => setTimeout(r, 500));
      const result = await api(`/jobs/${encodeURIComponent(jobId)}/savepoints/${encodeURIComponent(trigger['request-id'])}`);
      if (result.status.id === 'COMPLETED') {
        if (result.operation['failure-cause']) {
          show(`Savepoint failed: ${result.operation['failure-cause']['stack-trace']}`, true);
        } else {
          show(`Savepoint completed: ${result.operation.location}`);
        }
        return;
      }
    }
  } catch (error) {
    show(`Savepoint refused: ${error.message}`, true);
  }
}

async function cancel(jobId) {
  if (!await confirmAction('Cancel the job? It stops now; its retained checkpoints are kept only if its settings say so.')) return;
  try {
    await api(`/jobs/${encodeURIComponent(jobId)}?mode=cancel`, { method: 'PATCH' });
    show('Job canceled.');
    route();
  } catch (error) {
    show(`Cancel refused: ${error.message}`, true);
  }
}

window.addEventListener('hashchange', route);
route();
