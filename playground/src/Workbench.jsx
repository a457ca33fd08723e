// The workbench: GraphiQL 5 (editor, docs, explorer, history) with the saved queries
// beside it and the result as a table and a chart below. Loaded after the sign-in page.
import './workers.js';
// GraphiQL's styles piece by piece: `graphiql/style.css` would add 400 kB of embedded
// Roboto and Fira Code fonts (we use the system's) and a second copy of Monaco's CSS
// (which comes with the Monaco chunk).
import '@graphiql/react/style.css';
import '@graphiql/plugin-history/style.css';
import '@graphiql/plugin-doc-explorer/style.css';
import 'graphiql/graphiql.css';
import '@graphiql/plugin-explorer/style.css';
import './graphiql-theme.css';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import { GraphiQLProvider, useGraphiQL } from '@graphiql/react';
import { GraphiQL, GraphiQLInterface, HISTORY_PLUGIN } from 'graphiql';
import { HistoryStore } from '@graphiql/plugin-history';
import { DOC_EXPLORER_PLUGIN, DocExplorerStore } from '@graphiql/plugin-doc-explorer';
import { explorerPlugin } from '@graphiql/plugin-explorer';
import { createFetcher, loadSchema } from './fetcher.js';
import { scrubbedLocalStorage } from './auth.js';
import { SAVED_QUERIES } from './savedQueries.js';
import Sidebar from './Sidebar.jsx';
import ResultsPanel from './results/ResultsPanel.jsx';

const WELCOME = `# Welcome to the c360 playground.
#
# Pick a saved query on the left (▶ runs it), or write your own:
# Ctrl+Enter runs the query, Ctrl+Space completes field names.
# The docs (book icon) and the explorer list exactly what your token may see.
# Results show as JSON on the right and as a table and a chart below.

query Welcome {
  insightModel {
    asOf
    fittedAt
    customers
  }
}
`;

const PLUGINS = [DOC_EXPLORER_PLUGIN, HISTORY_PLUGIN, explorerPlugin({ showAttribution: false })];

const VIEWS = Object.fromEntries(
  SAVED_QUERIES.filter((q) => q.view && q.operationName).map((q) => [q.operationName, q.view]),
);

const PANEL_KEY = 'c360.playground.resultsHeight';

function SchemaNotice({ state, viewer, onRetry }) {
  if (!viewer) return null;
  if (state.status === 'loading') {
    return (
      <div className="notice info" data-testid="schema-status" data-status="loading">
        Loading the schema as {viewer.role} sees it…
      </div>
    );
  }
  if (state.status === 'unavailable') {
    return (
      <div className="notice warn" data-testid="schema-status" data-status="unavailable">
        <strong>The docs are not available to this token.</strong> The hub does not answer introspection for the
        role <code>{viewer.role}</code> (<code>graphql.introspection_roles</code>), so the docs, the explorer and
        autocompletion are off. Queries still run. <span className="muted">({state.message})</span>
      </div>
    );
  }
  if (state.status === 'error') {
    return (
      <div className="notice error" data-testid="schema-status" data-status="error">
        The schema could not be loaded: {state.message}{' '}
        <button type="button" className="link" onClick={onRetry}>
          Try again
        </button>
      </div>
    );
  }
  return <div hidden data-testid="schema-status" data-status={state.status} />;
}

/** Blanks GraphiQL's response pane, in every tab, when the viewer changes. */
function ForgetResponses({ token }) {
  const { responseEditor, tabs } = useGraphiQL((s) => ({ responseEditor: s.responseEditor, tabs: s.tabs }));
  const first = useRef(true);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    for (const tab of tabs) tab.response = null;
    responseEditor?.setValue('');
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [token]);
  return null;
}

function useResizablePanel() {
  const [height, setHeight] = useState(() => {
    const stored = Number(localStorage.getItem(PANEL_KEY));
    return stored >= 120 && stored <= 2000 ? stored : 340;
  });
  const onPointerDown = useCallback(
    (e) => {
      e.preventDefault();
      const startY = e.clientY;
      const startHeight = height;
      const handle = e.currentTarget;
      handle.setPointerCapture(e.pointerId);
      const move = (ev) => {
        const max = window.innerHeight - 220;
        setHeight(Math.max(120, Math.min(max, startHeight + (startY - ev.clientY))));
      };
      const up = (ev) => {
        handle.releasePointerCapture(ev.pointerId);
        handle.removeEventListener('pointermove', move);
        handle.removeEventListener('pointerup', up);
        setHeight((h) => {
          localStorage.setItem(PANEL_KEY, String(Math.round(h)));
          return h;
        });
      };
      handle.addEventListener('pointermove', move);
      handle.addEventListener('pointerup', up);
    },
    [height],
  );
  return { height, onPointerDown };
}

export default function Workbench({ viewer, onUnauthenticated }) {
  const token = viewer?.token ?? null;
  const tokenRef = useRef(token);
  tokenRef.current = token;
  const [schemaState, setSchemaState] = useState({ status: 'loading' });
  const [result, setResult] = useState(null);
  const [attempt, setAttempt] = useState(0);
  const [sidebarCollapsed, setSidebarCollapsed] = useState(false);
  const panel = useResizablePanel();

  const onUnauthRef = useRef(onUnauthenticated);
  onUnauthRef.current = onUnauthenticated;

  // A new fetcher per token: GraphiQL then runs with it, and the schema is loaded anew.
  const fetcher = useMemo(
    () =>
      createFetcher({
        getToken: () => tokenRef.current,
        onResult: setResult,
        onUnauthenticated: (message) => onUnauthRef.current(message),
      }),
    // eslint-disable-next-line react-hooks/exhaustive-deps
    [token],
  );

  useEffect(() => {
    // A new viewer sees nothing of the last one's results.
    setResult(null);
    if (!token) return undefined;
    let cancelled = false;
    setSchemaState({ status: 'loading', token });
    loadSchema(token).then((state) => {
      if (cancelled) return;
      if (state.status === 'unauthenticated') {
        onUnauthRef.current(state.message);
        return;
      }
      setSchemaState({ ...state, token });
    });
    return () => {
      cancelled = true;
    };
  }, [token, attempt]);

  return (
    <GraphiQLProvider
      fetcher={fetcher}
      schema={schemaState.status === 'ready' && schemaState.token === token ? schemaState.schema : null}
      plugins={PLUGINS}
      referencePlugin={DOC_EXPLORER_PLUGIN}
      storage={scrubbedLocalStorage}
      defaultQuery={WELCOME}
      shouldPersistHeaders={false}
      defaultTheme="light"
    >
      <HistoryStore maxHistoryLength={100}>
        <DocExplorerStore>
          <ForgetResponses token={token} />
          <div className="workbench" data-testid="workbench">
            <Sidebar collapsed={sidebarCollapsed} onToggle={() => setSidebarCollapsed((c) => !c)} />
            <div className="work-main">
              <SchemaNotice
                state={schemaState.token === token ? schemaState : { status: 'loading' }}
                viewer={viewer}
                onRetry={() => setAttempt((a) => a + 1)}
              />
              <div className="editor-area" data-schema={schemaState.status}>
                <GraphiQLInterface
                  isHeadersEditorEnabled={false}
                  showPersistHeadersSettings={false}
                  defaultEditorToolsVisibility={false}
                  forcedTheme="light"
                >
                  <GraphiQL.Logo>
                    <span className="graphiql-brand">c360</span>
                  </GraphiQL.Logo>
                </GraphiQLInterface>
              </div>
              <div
                className="panel-handle"
                role="separator"
                aria-orientation="horizontal"
                aria-label="Resize the results"
                onPointerDown={panel.onPointerDown}
              />
              <div className="results-wrap" style={{ height: panel.height }}>
                <ResultsPanel result={result} viewer={viewer} views={VIEWS} />
              </div>
            </div>
          </div>
        </DocExplorerStore>
      </HistoryStore>
    </GraphiQLProvider>
  );
}
