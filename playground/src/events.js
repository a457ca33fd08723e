// Server-Sent Events (the graphql-sse protocol, distinct connections): how the playground
// runs subscriptions. The hub streams `event: next` per response and `event: complete`.

/**
 * Splits `buffer` into the complete events it holds and what is left over: events are
 * separated by a blank line; `data:` lines join with newlines; comments (`:`) are skipped.
 */
export function parseEvents(buffer) {
  const events = [];
  const text = buffer.replace(/\r\n?/g, '\n');
  const blocks = text.split('\n\n');
  const rest = blocks.pop();
  for (const block of blocks) {
    let event = 'message';
    const data = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length || event !== 'message') events.push({ event, data: data.join('\n') });
  }
  return { events, rest };
}

/**
 * The responses of a subscription over an event stream, as an async iterator (what
 * GraphiQL shows one after another); ends at `complete`, or when the stream closes.
 */
export async function* subscribe(token, payload, signal) {
  const res = await fetch('/graphql', {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${token}` },
    body: JSON.stringify(payload),
    credentials: 'omit',
    cache: 'no-store',
    signal,
  });
  if (!res.ok || !res.body) {
    let body;
    try {
      body = await res.json();
    } catch {
      body = { errors: [{ message: `The hub answered HTTP ${res.status}.`, extensions: { code: `HTTP_${res.status}` } }] };
    }
    yield body;
    return;
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      const { events, rest } = parseEvents(buffer);
      buffer = rest;
      for (const { event, data } of events) {
        if (event === 'complete') return;
        if (event === 'next') yield JSON.parse(data);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
