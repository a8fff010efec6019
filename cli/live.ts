/**
 * What `npm start` shows: a compact table refreshed every second (per target: status, connections by
 * state against max, utilization, latencies, the open incident and its step) above the latest events,
 * or, when the output is not a terminal, one line per event.
 */

import { printable } from '../shared/printable.ts';
import type { Style } from './format.ts';
import type { Io } from './io.ts';
import type { LiveStatus, SystemEvent } from './local/system.ts';

const time = (ms: number = Date.now()) => new Date(ms).toISOString().slice(11, 19);

function statusCell(status: LiveStatus['status'], style: Style): string {
  if (status === 'healthy') return style.ok('healthy');
  if (status === 'starting') return style.dim('starting');
  if (status === 'degraded') return style.warn('degraded');
  return status === 'suspect' ? style.warn('suspect') : style.bad('UNHEALTHY');
}

/**
 * One line for an event, or undefined for events only the table shows. Whatever the database or a
 * server wrote into it is shown printable.
 */
export function describeEvent(event: SystemEvent, style: Style): string | undefined {
  switch (event.type) {
    case 'ready':
      return `monitoring ${event.target} (${event.database})${event.embedded ? ' on an embedded PostgreSQL' : ''}`;
    case 'probe':
      return undefined;
    case 'incident':
      return style.warn(`incident ${event.outcome.incidentId} opened`);
    case 'step':
      return style.dim(`  ${event.incidentId}: ${event.state}`);
    case 'published': {
      const kind = event.message.attributes['pgwarden.kind'] ?? 'message';
      const line = `${event.message.topic === 'pgwarden-pages' ? 'PAGE' : 'notification'} (${kind}): ${printable(event.message.subject)}`;
      return event.message.topic === 'pgwarden-pages' ? style.bad(line) : style.bold(line);
    }
    case 'incident-ended':
      return `incident ${event.incidentId} ended: ${event.record?.status ?? event.status.toLowerCase()}${event.record?.paged ? ' (on-call was paged)' : ''}`;
    case 'sweep':
      return event.ok
        ? event.terminated > 0
          ? `sweep terminated ${event.terminated} idle session(s)`
          : undefined
        : style.warn(`sweep could not run: ${printable(event.detail ?? '')}`);
    case 'drill':
      return style.warn(`drill ${event.drill} ${event.phase}: ${printable(event.detail)}`);
    case 'error':
      return style.bad(`error: ${printable(event.message)}`);
  }
}

export function healthLine(status: LiveStatus, style: Style): string {
  const r = status.last;
  if (!r) return `${status.targetId} ${statusCell(status.status, style)}`;
  if (!r.ok)
    return `${status.targetId} ${statusCell(status.status, style)} ${r.failure.category}: ${printable(r.failure.message)}`;
  const c = r.connections;
  return `${status.targetId} ${statusCell(status.status, style)} conn ${c.total}/${c.usable} (${c.utilizationPct}%) active ${c.active} idle ${c.idle} idle-in-tx ${c.idleInTransaction} waiting ${c.waiting}; connect ${r.latencyMs.connect}ms query ${r.latencyMs.query}ms`;
}

export interface Renderer {
  handle(event: SystemEvent): void;
  close(): void;
}

export function createRenderer(
  io: Io,
  status: LiveStatus,
  style: Style,
  options: { live: boolean; header: string },
): Renderer {
  const recent: string[] = [];
  if (!options.live) {
    let lastHealth = '';
    let lastPrinted = 0;
    io.out(`${options.header}\n`);
    return {
      handle(event) {
        if (event.type === 'probe') {
          // A health line when the picture changes, and every 30 seconds regardless.
          const line = healthLine(status, style);
          const changed = line.split(' conn ')[0] !== lastHealth.split(' conn ')[0];
          if (changed || Date.now() - lastPrinted > 30_000) {
            io.out(`${time()} ${line}\n`);
            lastHealth = line;
            lastPrinted = Date.now();
          }
          return;
        }
        const line = describeEvent(event, style);
        if (line) io.out(`${time()} ${line}\n`);
        if (event.type === 'published')
          io.out(`${indent(event.message.message)}\n  (outbox: ${event.file})\n`);
      },
      close() {},
    };
  }
  const draw = () => {
    const r = status.last;
    const c = r?.ok ? r.connections : undefined;
    const rows = [
      [
        'TARGET',
        'STATUS',
        'CONN/MAX',
        'ACTIVE',
        'IDLE',
        'IDLE-TX',
        'WAIT',
        'UTIL',
        'CONNECT',
        'QUERY',
        'INCIDENT',
      ],
      [
        status.targetId,
        statusCell(status.status, style),
        c ? `${c.total}/${c.usable}` : '-',
        c ? String(c.active) : '-',
        c ? String(c.idle) : '-',
        c ? String(c.idleInTransaction) : '-',
        c ? String(c.waiting) : '-',
        c ? `${c.utilizationPct}%` : '-',
        r ? `${r.latencyMs.connect}ms` : '-',
        r?.ok ? `${r.latencyMs.query}ms` : r ? r.failure.category : '-',
        status.incident ? `${status.incident.incidentId} ${status.incident.state ?? ''}` : '-',
      ],
    ];
    // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping ANSI colour codes to measure width
    const width = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;
    const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => width(row[i] ?? '')))) ?? [];
    const lines = rows.map((row) =>
      row.map((cell, i) => cell + ' '.repeat((widths[i] ?? 0) - width(cell))).join('  '),
    );
    io.out(
      `\u001b[2J\u001b[H${style.bold(options.header)}\n\n${lines.join('\n')}\n\n${recent.join('\n')}\n\n${style.dim('Ctrl-C stops everything.')}\n`,
    );
  };
  const timer = setInterval(draw, 1_000);
  draw();
  return {
    handle(event) {
      const line = describeEvent(event, style);
      if (line) {
        recent.push(`${time()} ${line}`);
        if (recent.length > 12) recent.shift();
      }
    },
    close() {
      clearInterval(timer);
      draw();
    },
  };
}

function indent(text: string): string {
  return printable(text, { multiline: true })
    .split('\n')
    .map((line) => `  | ${line}`)
    .join('\n');
}
