// The one way the page talks GraphQL to the hub: POST /graphql with the viewer's token.
import { buildClientSchema } from 'graphql';
import { subscribe } from './events.js';

const ACCEPT = 'application/graphql-response+json, application/json';

async function post(token, payload, accept = ACCEPT) {
  const headers = { 'content-type': 'application/json', accept };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch('/graphql', {
    method: 'POST',
    headers,
    body: JSON.stringify(payload),
    credentials: 'omit',
    cache: 'no-store',
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = {
      errors: [{ message: `The hub answered HTTP ${res.status} without a JSON body.`, extensions: { code: `HTTP_${res.status}` } }],
    };
  }
  return { status: res.status, body, requestId: res.headers.get('x-request-id') };
}

let resultCounter = 0;

/** The names of the operations a document defines (comments and strings aside). */
export function operationNames(query) {
  const code = query
    .replace(/"""[\s\S]*?"""/g, '')
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '')
    .replace(/#.*$/gm, '');
  return [...code.matchAll(/\b(?:query|mutation|subscription)\s+([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1]);
}

/**
 * The operation to run: the one GraphiQL names when the document has it, else the
 * document's only one (GraphiQL may still hold the name from before an edit).
 */
function pickOperationName(query, requested) {
  const names = operationNames(query);
  if (requested && names.includes(requested)) return requested;
  if (names.length === 1) return names[0];
  return null;
}

/** Whether the operation that runs is a subscription (comments and strings aside). */
export function isSubscription(query, operationName) {
  const code = query
    .replace(/"""[\s\S]*?"""/g, '')
    .replace(/"(?:[^"\\\n]|\\.)*"/g, '')
    .replace(/#.*$/gm, '');
  const operations = [...code.matchAll(/\b(query|mutation|subscription)\b\s*([A-Za-z_][A-Za-z0-9_]*)?/g)];
  const chosen = operations.find((m) => !operationName || m[2] === operationName) ?? operations[0];
  return chosen?.[1] === 'subscription';
}

/**
 * A GraphiQL fetcher: every operation goes out with the current token, and every
 * answer is reported (for the table and chart) before GraphiQL shows it as JSON. A
 * subscription runs over Server-Sent Events: GraphiQL shows each event as it comes.
 */
export function createFetcher({ getToken, onResult, onUnauthenticated }) {
  return async function fetcher(params) {
    const token = getToken();
    const payload = { query: params.query };
    if (params.variables && Object.keys(params.variables).length) payload.variables = params.variables;
    const operationName = pickOperationName(params.query, params.operationName);
    if (operationName) payload.operationName = operationName;
    if (token && isSubscription(params.query, operationName)) {
      return subscribe(token, payload);
    }
    const started = performance.now();
    let answer;
    if (!token) {
      answer = {
        status: 0,
        body: { errors: [{ message: 'Not signed in.', extensions: { code: 'UNAUTHENTICATED' } }] },
      };
    } else {
      try {
        answer = await post(token, payload);
      } catch (e) {
        answer = {
          status: 0,
          body: { errors: [{ message: `The hub cannot be reached: ${e?.message ?? e}`, extensions: { code: 'NETWORK_ERROR' } }] },
        };
      }
    }
    resultCounter += 1;
    onResult({
      id: resultCounter,
      operationName,
      status: answer.status,
      ms: performance.now() - started,
      requestId: answer.requestId ?? null,
      body: answer.body,
    });
    if (answer.status === 401) onUnauthenticated(answer.body?.errors?.[0]?.message ?? 'the hub refused the token');
    return answer.body;
  };
}

// A type reference written out without fragments, `levels` wrappers deep (enough for
// `[[X!]!]!`). graphql-js's introspection query nests a fragment nine levels deep and
// goes past the hub's depth limit (15); this one stays at 12.
function typeRef(levels) {
  return levels === 0 ? 'kind name' : `kind name ofType { ${typeRef(levels - 1)} }`;
}

const TYPE_REF = typeRef(6);

export const INTROSPECTION_QUERY = `query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types {
      kind
      name
      description
      fields(includeDeprecated: true) {
        name
        description
        args { name description type { ${TYPE_REF} } defaultValue }
        type { ${TYPE_REF} }
        isDeprecated
        deprecationReason
      }
      inputFields { name description type { ${TYPE_REF} } defaultValue }
      interfaces { ${TYPE_REF} }
      enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
      possibleTypes { ${TYPE_REF} }
    }
    directives {
      name
      description
      locations
      args { name description type { ${TYPE_REF} } defaultValue }
    }
  }
}`;

function namedType(ref) {
  let t = ref;
  while (t && t.ofType) t = t.ofType;
  return t?.name ?? null;
}

/**
 * Drops input object types the viewer sees no field of (e.g. `CustomerFilter` for a
 * partner, whose insight and internal filters are all hidden), with the arguments and
 * input fields of those types: GraphQL does not allow an input type without fields, and
 * GraphiQL refuses the whole schema if one is left.
 */
export function pruneEmptyInputTypes(introspection) {
  const schema = introspection.__schema;
  let types = schema.types;
  let directives = schema.directives ?? [];
  const dropped = [];
  for (;;) {
    const empty = new Set(
      types.filter((t) => t.kind === 'INPUT_OBJECT' && (t.inputFields ?? []).length === 0).map((t) => t.name),
    );
    if (empty.size === 0) break;
    dropped.push(...empty);
    const keep = (v) => !empty.has(namedType(v.type));
    types = types
      .filter((t) => !empty.has(t.name))
      .map((t) => ({
        ...t,
        fields: t.fields ? t.fields.map((f) => ({ ...f, args: (f.args ?? []).filter(keep) })) : t.fields,
        inputFields: t.inputFields ? t.inputFields.filter(keep) : t.inputFields,
      }));
    directives = directives.map((d) => ({ ...d, args: (d.args ?? []).filter(keep) }));
  }
  return { introspection: { __schema: { ...schema, types, directives } }, dropped };
}

/**
 * The schema as this token sees it. The hub filters introspection per viewer, and
 * refuses it altogether to roles outside `graphql.introspection_roles`.
 */
export async function loadSchema(token) {
  let answer;
  try {
    // As application/json, a refused introspection is a 200 with errors rather than a
    // 400 (which browsers log as a failed resource on every sign-in of such a role).
    answer = await post(token, { query: INTROSPECTION_QUERY, operationName: 'IntrospectionQuery' }, 'application/json');
  } catch (e) {
    return { status: 'error', message: `The hub cannot be reached: ${e?.message ?? e}` };
  }
  const { status, body } = answer;
  if (status === 401) {
    return { status: 'unauthenticated', message: body?.errors?.[0]?.message ?? 'the hub refused the token' };
  }
  if (body?.data?.__schema) {
    try {
      const { introspection, dropped } = pruneEmptyInputTypes(body.data);
      return { status: 'ready', schema: buildClientSchema(introspection), dropped };
    } catch (e) {
      return { status: 'error', message: `The schema could not be read: ${e?.message ?? e}` };
    }
  }
  const error = body?.errors?.[0];
  if (error?.extensions?.code === 'GRAPHQL_VALIDATION_FAILED' || error?.extensions?.code === 'FORBIDDEN') {
    return { status: 'unavailable', message: error.message };
  }
  return { status: 'error', message: error?.message ?? `HTTP ${status}` };
}
