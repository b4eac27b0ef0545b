// API client: fetch helpers for the /v1 routes, the API's error bodies, and a reader for
// server-sent events (the streamed solve).

import { apiKey } from './settings.js';

/** An HTTP error with the API's error body: {error: {type, message, fields?, run_id?}}. */
export class ApiError extends Error {
  constructor(status, error = {}) {
    super(error.message || `Request failed (HTTP ${status}).`);
    this.status = status;
    this.type = error.type || 'http_error';
    this.fields = Array.isArray(error.fields) ? error.fields : [];
    this.runId = error.run_id || null;
  }
}

async function errorFromResponse(response) {
  let error = {};
  try {
    const body = await response.json();
    if (body && typeof body.error === 'object') error = body.error;
    else if (body && typeof body.detail === 'string') error = { message: body.detail };
  } catch {
    /* not JSON: keep the generic message */
  }
  if (!error.message) {
    error.message = `The server answered HTTP ${response.status} ${response.statusText || ''}`.trim() + '.';
  }
  return new ApiError(response.status, error);
}

/** fetch() for /v1 routes: adds the API key, sends JSON, throws ApiError on HTTP >= 400. */
export async function apiFetch(path, { method = 'GET', body, signal, accept = 'application/json' } = {}) {
  const headers = { Accept: accept };
  const key = apiKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, { type: 'network_error', message: 'Could not reach the server. Is `flux serve` running?' });
  }
  if (!response.ok) throw await errorFromResponse(response);
  return response;
}

export async function apiJson(path, options) {
  const response = await apiFetch(path, options);
  return response.json();
}

/**
 * Read a text/event-stream body and yield each event's parsed JSON data.
 * Events are blocks of `id:`, `event:` and `data:` lines ended by a blank line; a network
 * chunk can end anywhere, so text is buffered until a whole block has arrived.
 */
export async function* readServerEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      // Normalise CRLF; a lone '\r' at a chunk's end is joined with its '\n' next time.
      buffer = (buffer + value).replace(/\r\n/g, '\n');
      let end;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = parseEventBlock(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
        if (event) yield event;
      }
    }
    const last = parseEventBlock(buffer.replace(/\r$/, ''));
    if (last) yield last;
  } finally {
    reader.releaseLock();
  }
}

function parseEventBlock(block) {
  let name = '';
  const data = [];
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue; // blank or comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  try {
    const payload = JSON.parse(data.join('\n'));
    if (payload && typeof payload === 'object') {
      if (!payload.type) payload.type = name || 'message';
      return payload;
    }
  } catch (err) {
    console.warn('unreadable server event', err, block);
  }
  return null;
}

// Template details (names for the Runs view), fetched once per id.
const templateCache = new Map();

export function fetchTemplate(id) {
  if (!templateCache.has(id)) {
    const request = apiJson(`/v1/templates/${encodeURIComponent(id)}`).catch(() => null);
    templateCache.set(id, request);
  }
  return templateCache.get(id);
}
