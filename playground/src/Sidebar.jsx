import { useState } from 'react';
import { useGraphiQL, useGraphiQLActions } from '@graphiql/react';
import { SAVED_QUERIES, loadMyQueries, storeMyQueries } from './savedQueries.js';
import { scrubTokens } from './auth.js';

function isBlank(query) {
  return !query || !query.replace(/#.*$/gm, '').trim();
}

/** Opens a query in the editor: in its tab if one holds it, else in a new tab. */
function useOpenQuery() {
  const { addTab, changeTab, run } = useGraphiQLActions();
  const { queryEditor, variableEditor, tabs, activeTabIndex } = useGraphiQL((s) => ({
    queryEditor: s.queryEditor,
    variableEditor: s.variableEditor,
    tabs: s.tabs,
    activeTabIndex: s.activeTabIndex,
  }));
  return (query, variables, runNow) => {
    if (!queryEditor) return;
    const existing = tabs.findIndex((t) => (t.query ?? '').trim() === query.trim());
    if (existing >= 0) {
      if (existing !== activeTabIndex) changeTab(existing);
    } else {
      const current = tabs[activeTabIndex];
      const current_query = queryEditor.getValue();
      const replaceable = isBlank(current_query) || current?.title === 'Welcome' || SAVED_QUERIES.some((q) => q.query.trim() === current_query.trim());
      if (!replaceable) addTab();
      queryEditor.setValue(query);
      variableEditor?.setValue(variables ?? '');
    }
    if (runNow) setTimeout(() => run(), 0);
  };
}

export default function Sidebar({ collapsed, onToggle }) {
  const open = useOpenQuery();
  const queryEditor = useGraphiQL((s) => s.queryEditor);
  const variableEditor = useGraphiQL((s) => s.variableEditor);
  const [mine, setMine] = useState(loadMyQueries);
  const [naming, setNaming] = useState(null);

  function startSave() {
    const query = queryEditor?.getValue() ?? '';
    const name = /^\s*(?:query|mutation)\s+(\w+)/m.exec(query)?.[1] ?? 'My query';
    setNaming(name);
  }

  function save(e) {
    e.preventDefault();
    const query = scrubTokens(queryEditor?.getValue() ?? '');
    if (isBlank(query)) return setNaming(null);
    const entry = {
      id: `${Date.now().toString(36)}`,
      title: naming.trim() || 'My query',
      query,
      variables: scrubTokens(variableEditor?.getValue() ?? ''),
      savedAt: new Date().toISOString(),
    };
    const next = [entry, ...mine.filter((q) => q.title !== entry.title)];
    setMine(next);
    storeMyQueries(next);
    setNaming(null);
  }

  function remove(id) {
    const next = mine.filter((q) => q.id !== id);
    setMine(next);
    storeMyQueries(next);
  }

  if (collapsed) {
    return (
      <aside className="sidebar collapsed">
        <button type="button" className="icon-button" onClick={onToggle} title="Show saved queries" aria-label="Show saved queries">
          »
        </button>
      </aside>
    );
  }

  return (
    <aside className="sidebar" data-testid="saved-queries">
      <div className="sidebar-head">
        <h2>Saved queries</h2>
        <button type="button" className="icon-button" onClick={onToggle} title="Hide saved queries" aria-label="Hide saved queries">
          «
        </button>
      </div>
      <ul className="query-list">
        {SAVED_QUERIES.map((q) => (
          <li key={q.id} className="query-item" data-query={q.id}>
            <button
              type="button"
              className="query-open"
              onClick={() => open(q.query, '', false)}
              title="Open in the editor"
              disabled={!queryEditor}
            >
              <span className="query-title">{q.title}</span>
              <span className="query-desc">{q.description}</span>
            </button>
            <button
              type="button"
              className="run-button"
              onClick={() => open(q.query, '', true)}
              title={`Run “${q.title}”`}
              aria-label={`Run ${q.title}`}
              data-testid={`run-${q.id}`}
              disabled={!queryEditor}
            >
              ▶
            </button>
          </li>
        ))}
      </ul>
      <div className="sidebar-head">
        <h2>My queries</h2>
        {naming === null && (
          <button type="button" className="link" onClick={startSave} data-testid="save-mine">
            + Save current
          </button>
        )}
      </div>
      {naming !== null && (
        <form className="save-form" onSubmit={save}>
          <input
            autoFocus
            value={naming}
            onChange={(e) => setNaming(e.target.value)}
            aria-label="Name of the saved query"
            maxLength={80}
          />
          <button type="submit" className="button">
            Save
          </button>
          <button type="button" className="link" onClick={() => setNaming(null)}>
            Cancel
          </button>
        </form>
      )}
      {mine.length === 0 ? (
        <p className="muted small">Queries you save are kept in this browser.</p>
      ) : (
        <ul className="query-list">
          {mine.map((q) => (
            <li key={q.id} className="query-item">
              <button type="button" className="query-open" onClick={() => open(q.query, q.variables, false)} title="Open in the editor">
                <span className="query-title">{q.title}</span>
                <span className="query-desc">saved {new Date(q.savedAt).toLocaleString()}</span>
              </button>
              <button type="button" className="run-button" onClick={() => open(q.query, q.variables, true)} aria-label={`Run ${q.title}`}>
                ▶
              </button>
              <button type="button" className="delete-button" onClick={() => remove(q.id)} aria-label={`Delete ${q.title}`} title="Delete">
                ×
              </button>
            </li>
          ))}
        </ul>
      )}
      <p className="muted small sidebar-foot">
        History, the docs and the query explorer are in the icons left of the editor.
      </p>
    </aside>
  );
}
