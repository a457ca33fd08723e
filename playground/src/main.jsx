import './styles.css';
import { Component, Suspense, lazy, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { clearToken, isExpired, loadToken, saveToken, viewerFromToken } from './auth.js';
import SignIn from './SignIn.jsx';
import ViewerBadge from './ViewerBadge.jsx';

// The workbench (GraphiQL, Monaco, the results) is a chunk of its own; it starts
// downloading at once, while the sign-in shows.
const loadWorkbench = () => import('./Workbench.jsx');
const Workbench = lazy(loadWorkbench);
loadWorkbench();

function initialViewer() {
  const token = loadToken();
  if (!token) return null;
  try {
    const viewer = viewerFromToken(token);
    if (isExpired(viewer)) {
      clearToken();
      return null;
    }
    return viewer;
  } catch {
    clearToken();
    return null;
  }
}

class ErrorBoundary extends Component {
  constructor(props) {
    super(props);
    this.state = { error: null };
  }
  static getDerivedStateFromError(error) {
    return { error };
  }
  render() {
    if (this.state.error) {
      return (
        <div className="notice error fatal">
          The workbench failed: {String(this.state.error?.message ?? this.state.error)}. Reload the page.
        </div>
      );
    }
    return this.props.children;
  }
}

const MAX_TIMEOUT = 2 ** 31 - 1;

function App() {
  const [viewer, setViewer] = useState(initialViewer);
  const [reason, setReason] = useState(null);
  const [started, setStarted] = useState(() => viewer !== null);

  const signOut = useCallback((why) => {
    clearToken();
    setViewer(null);
    setReason(why ?? null);
  }, []);

  const signIn = useCallback((token) => {
    const next = viewerFromToken(token);
    if (isExpired(next)) throw new Error('This token has expired.');
    saveToken(next.token);
    setReason(null);
    setViewer(next);
    setStarted(true);
  }, []);

  // The page's own clock on `exp`: the token stops working then, so sign-in comes back.
  useEffect(() => {
    if (!viewer?.exp) return undefined;
    const expire = () =>
      signOut(`Your ${viewer.role} token expired at ${new Date(viewer.exp * 1000).toLocaleTimeString()}. Sign in again.`);
    const wait = viewer.exp * 1000 - Date.now();
    if (wait <= 0) {
      expire();
      return undefined;
    }
    let timer;
    const arm = () => {
      const left = viewer.exp * 1000 - Date.now();
      if (left <= 0) expire();
      else timer = setTimeout(arm, Math.min(left, MAX_TIMEOUT));
    };
    timer = setTimeout(arm, Math.min(wait, MAX_TIMEOUT));
    return () => clearTimeout(timer);
  }, [viewer, signOut]);

  const onUnauthenticated = useCallback(
    (message) => signOut(`The hub refused the token (${message}). Sign in again.`),
    [signOut],
  );

  return (
    <div className="app">
      <header className="app-header">
        <div className="brand">
          <img src="/favicon.svg" alt="" width="26" height="26" />
          <span className="brand-name">c360</span>
          <span className="brand-sub">Analysts’ playground</span>
        </div>
        <span className="spacer" />
        {viewer ? (
          <>
            <ViewerBadge viewer={viewer} />
            <button type="button" className="button ghost" onClick={() => signOut(null)} data-testid="sign-out">
              Sign out
            </button>
          </>
        ) : (
          <span className="muted" data-testid="signed-out">
            Not signed in
          </span>
        )}
      </header>
      <main className="app-main">
        {started ? (
          <ErrorBoundary>
            <Suspense fallback={<div className="boot">Loading the workbench…</div>}>
              <Workbench viewer={viewer} onUnauthenticated={onUnauthenticated} />
            </Suspense>
          </ErrorBoundary>
        ) : (
          <div className="boot" />
        )}
      </main>
      {!viewer && <SignIn reason={reason} onSignIn={signIn} />}
    </div>
  );
}

createRoot(document.getElementById('root')).render(<App />);
