// The tenant's live events from `GET /v1/events/stream` (Server-Sent Events: `id:`, `event:`,
// `data:` with the envelope JSON). Read with fetch rather than EventSource so that the key
// goes in the `X-Api-Key` header, never in the URL (where proxies and logs would keep it);
// a dropped stream is resumed with `Last-Event-ID`, as EventSource would (the gateway also
// takes the key in an `x-api-key` query parameter there, for clients that must use
// EventSource; the console does not need to).

import { send, problem } from './api.js';

const STREAM = '/v1/events/stream';

/** Splits SSE text into events; answers the events complete so far and the rest. */
export function parseEvents(buffer) {
  const events = [];
  const blocks = buffer.replace(/\r\n?/g, '\n').split('\n\n');
  const rest = blocks.pop();
  for (const block of blocks) {
    const event = { id: null, event: 'message', data: [] };
    let any = false;
    for (const line of block.split('\n')) {
      if (!line || line.startsWith(':')) continue; // a keep-alive comment
      const colon = line.indexOf(':');
      const name = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (name === 'data') event.data.push(value);
      else if (name === 'id') event.id = value;
      else if (name === 'event') event.event = value;
      else continue;
      any = true;
    }
    if (any) events.push({ ...event, data: event.data.join('\n') });
  }
  return { events, rest };
}

/**
 * Follows the stream until `stop()`: `onEvent({id, event, data})` for each event,
 * `onState(text, kind)` for what the tail is doing ('live', 'retrying', 'unavailable', 'error').
 */
export function follow({ onEvent, onState }) {
  const controller = new AbortController();
  let lastId = null;
  let stopped = false;

  async function once() {
    const headers = { Accept: 'text/event-stream' };
    if (lastId) headers['Last-Event-ID'] = lastId;
    const response = await send('GET', STREAM, { headers, signal: controller.signal });
    if (response.status === 404) {
      const err = await problem(response);
      onState(`Live events unavailable: this gateway does not serve ${STREAM} (${err.message}).`, 'unavailable');
      return false;
    }
    if (!response.ok) {
      const err = await problem(response);
      onState(`Live events stopped: ${err.message} (${err.status} ${err.error}).`, 'error');
      return false;
    }
    onState('Live: new events appear here as they happen.', 'live');
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return true;
      buffer += value;
      const { events, rest } = parseEvents(buffer);
      buffer = rest;
      for (const e of events) {
        // The opening block and the keep-alives carry only the position (`id:`): kept for
        // the resume, not shown, as EventSource dispatches no event without data.
        if (e.id) lastId = e.id;
        if (e.data) onEvent(e);
      }
    }
  }

  (async () => {
    let delay = 1000;
    while (!stopped) {
      try {
        const again = await once();
        if (!again) return;
        delay = 1000;
      } catch (e) {
        if (stopped || e.name === 'AbortError') return;
        onState(`Connection to the event stream lost (${e.message}); retrying in ${delay / 1000} s.`, 'retrying');
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 30_000);
    }
  })();

  return {
    stop() {
      stopped = true;
      controller.abort();
    },
  };
}
