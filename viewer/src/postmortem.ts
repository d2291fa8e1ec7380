/**
 * The post-mortem page of one bundle: verdict, summary, evidence, the frozen
 * charts of the dead worker, its siblings and master, the service's sockets,
 * host pressure, and every marker of the window. Pure rendering from a
 * decoded Bundle: the live viewer, a dropped file and a self-contained HTML
 * export all come here. Each section is built in its own module (postmortem-*.ts).
 */
import type { Bundle } from './codec';
import { h } from './dom';
import { fmtDuration } from './format';
import {
  deadWorkerGrid, hostGrid, PostmortemCharts, postmortemProcesses, postmortemWindow, serviceGrid, siblingsGrid,
} from './postmortem-charts';
import { eventsCard } from './postmortem-events';
import { bundleFacts, evidenceCard, factsCard } from './postmortem-facts';
import { postmortemHeader, type PostmortemOptions } from './postmortem-head';
import { whySection } from './postmortem-time';
import { renderWhy } from './postmortem-why';

export type { PostmortemOptions } from './postmortem-head';

export interface PostmortemHandle {
  destroy(): void;
}

/** Renders `bundle` into `root` (its content is replaced). */
export function renderPostmortem(root: HTMLElement, bundle: Bundle, opts: PostmortemOptions = {}): PostmortemHandle {
  const v = bundle.verdict;
  const w = bundle.worker;
  const win = postmortemWindow(bundle);
  const procs = postmortemProcesses(bundle);
  const charts = new PostmortemCharts(win);

  const header = postmortemHeader(bundle, opts, win.deathMs);
  const evidenceBox = evidenceCard(v);
  const factsBox = factsCard(bundleFacts(bundle, win.interval));
  const deadGrid = deadWorkerGrid(charts, bundle, procs);
  const siblings = siblingsGrid(charts, procs, win.interval);
  const service = serviceGrid(charts, bundle);
  const host = hostGrid(charts, bundle);
  const events = eventsCard(win.markers, procs);

  const page = h('div', { class: 'postmortem', 'data-view': 'postmortem', 'data-verdict': v?.kind ?? 'unknown', 'data-bundle': bundle.id },
    header,
    h('div', { class: 'grid two' }, evidenceBox, factsBox),
    renderWhy(bundle), // who sent it, the Python stack
    whySection(v), // where its last seconds went, the requests in flight
    h('h2', { class: 'section' }, `Worker pid ${w?.pid ?? '?'} — last ${fmtDuration(win.deathMs - win.range[0])} before death`),
    deadGrid,
    siblings ? h('h2', { class: 'section' }, 'Siblings and master over the same window') : null,
    siblings,
    service ? h('h2', { class: 'section' }, `Service ${bundle.service?.name ?? ''}`) : null,
    service,
    host ? h('h2', { class: 'section' }, 'Host') : null,
    host,
    events);
  root.replaceChildren(page);
  return {
    destroy() {
      charts.destroy();
      page.remove();
    },
  };
}
