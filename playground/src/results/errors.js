// What an error code means for the person at the keyboard (README, "Errors").

function scopeFrom(message) {
  const m = /scope [`'"]?([a-z]+:[a-z]+)/i.exec(message ?? '');
  return m ? m[1] : null;
}

const HINTS = {
  UNAUTHENTICATED: () => 'Your token is missing, expired, revoked or not valid: sign in again.',
  FORBIDDEN: (error, viewer) => {
    const scope = error.extensions?.scope ?? scopeFrom(error.message);
    if (scope) {
      return `Your token lacks the scope \`${scope}\`. Sign in with a token that has it${
        viewer?.scopes?.length ? ` (yours: ${viewer.scopes.join(' ')})` : ''
      }.`;
    }
    if (viewer?.role === 'partner') {
      return 'Partner tokens see consenting customers only: aggregates over every customer, and changes to consents, are not for them.';
    }
    return 'This operation is for another role (e.g. admins only) or needs a scope your token lacks.';
  },
  GRAPHQL_VALIDATION_FAILED: (error) => {
    if (/introspection/i.test(error.message ?? '')) {
      return 'The schema (docs, explorer, autocompletion) is not available to this token; queries still run.';
    }
    return 'A field, argument or filter this viewer may not see is unknown to it: the hub hides what your role may not read. The Docs list exactly what your token can ask for.';
  },
  GRAPHQL_PARSE_FAILED: () => 'The document is not valid GraphQL: check the line and column in the message.',
  LIMIT_EXCEEDED: (error) => {
    const { limit, max, found } = error.extensions ?? {};
    if (limit) {
      return `The ${limit} limit is ${max ?? '?'}, and this operation has ${found ?? 'more'}. Ask for fewer fields or smaller pages (\`first:\`).`;
    }
    return 'The operation is over one of the hub’s limits (depth, aliases, root fields, directives or cost): ask for less.';
  },
  RATE_LIMITED: (error) => {
    const wait = error.extensions?.retryAfter;
    return wait != null
      ? `This token used up its allowance: wait ${wait} s and run again.`
      : 'This token used up its allowance: wait a moment and run again.';
  },
  PAGE_SIZE_OUT_OF_RANGE: () => '`first` must be between 0 and the hub’s maximum page size.',
  INVALID_ID: () => 'That id is not one of the hub’s global ids, or of another type: copy ids from a result.',
  INVALID_CURSOR: () => 'Pass as `after` only a cursor this list handed out (`pageInfo.endCursor`).',
  BAD_USER_INPUT: () => 'An argument’s value is not acceptable (e.g. an email that is not an address).',
  AMBIGUOUS_MATCH: () => 'The lookup fits more than one customer.',
  BAD_REQUEST: () => 'The request is not a JSON GraphQL request.',
  UNSUPPORTED_MEDIA_TYPE: () => 'The request body must be application/json.',
  METHOD_NOT_ALLOWED: () => 'Mutations must be sent with POST.',
  NOT_ACCEPTABLE: () => 'The request must accept application/graphql-response+json or application/json.',
  TIMEOUT: () => 'The request ran longer than the hub allows: ask for less, or smaller pages.',
  REFRESH_RUNNING: () => 'Another replica is refreshing the insights: try again when it is done.',
  AUDIT_UNAVAILABLE: () => 'The audit log cannot record what this answer would reveal, so it was withheld. Try again later.',
  SOURCE_UNAVAILABLE: (error) =>
    `A source database failed${error.extensions?.source ? ` (${error.extensions.source})` : ''}: try again later.`,
  MODEL_NOT_READY: () => 'No insight model is fitted yet: wait for the first fit (or run `c360 fit`).',
  INTERNAL: () => 'A bug or bad source data on the hub: the details are in its log (quote the request id).',
};

export function hintFor(error, viewer) {
  const code = error?.extensions?.code;
  const hint = code && HINTS[code];
  return hint ? hint(error, viewer) : null;
}

export function errorsOf(body) {
  return Array.isArray(body?.errors) ? body.errors : [];
}
