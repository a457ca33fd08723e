import { useEffect, useMemo, useState } from 'react';
import { fetchDevToken, fetchDevViewers, isExpired, viewerFromToken } from './auth.js';

const LIFETIMES = [
  { seconds: 900, label: '15 minutes' },
  { seconds: 3600, label: '1 hour' },
  { seconds: 8 * 3600, label: '8 hours' },
  { seconds: 86400, label: '24 hours' },
];

function DevPicker({ dev, onSignIn }) {
  const [role, setRole] = useState(() => (dev.roles.some((r) => r.role === 'analyst') ? 'analyst' : dev.roles[0]?.role));
  const [partner, setPartner] = useState(dev.partners[0] ?? '');
  const [ttl, setTtl] = useState(3600);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const scopes = dev.roles.find((r) => r.role === role)?.scopes ?? [];

  async function submit(e) {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const token = await fetchDevToken({ role, partner: role === 'partner' ? partner : undefined, ttlSeconds: ttl });
      onSignIn(token);
    } catch (err) {
      setError(err.message);
      setBusy(false);
    }
  }

  return (
    <form className="signin-form" onSubmit={submit} data-testid="dev-picker">
      <p className="muted">
        Development hub: pick a role and the hub issues a short-lived token for it.
      </p>
      <fieldset className="roles">
        <legend>Role</legend>
        {dev.roles.map((r) => (
          <label key={r.role} className={role === r.role ? 'role-option selected' : 'role-option'}>
            <input
              type="radio"
              name="role"
              value={r.role}
              checked={role === r.role}
              onChange={() => setRole(r.role)}
              data-testid={`role-${r.role}`}
            />
            <span className={`role-pill role-${r.role}`}>{r.role}</span>
          </label>
        ))}
      </fieldset>
      <div className="scopes-line" data-testid="role-scopes">
        {scopes.length ? scopes.map((s) => <code key={s}>{s}</code>) : <span className="muted">no scopes</span>}
      </div>
      {role === 'partner' && (
        <label className="field">
          Partner
          <select value={partner} onChange={(e) => setPartner(e.target.value)} data-testid="partner-select">
            {dev.partners.map((p) => (
              <option key={p} value={p}>
                {p}
              </option>
            ))}
          </select>
        </label>
      )}
      <label className="field">
        Valid for
        <select value={ttl} onChange={(e) => setTtl(Number(e.target.value))} data-testid="ttl-select">
          {LIFETIMES.map((l) => (
            <option key={l.seconds} value={l.seconds}>
              {l.label}
            </option>
          ))}
        </select>
      </label>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" className="button primary" disabled={busy || (role === 'partner' && !partner)} data-testid="dev-signin">
        {busy ? 'Signing in…' : `Sign in as ${role}${role === 'partner' && partner ? ` (${partner})` : ''}`}
      </button>
    </form>
  );
}

function PasteToken({ onSignIn }) {
  const [text, setText] = useState('');
  const preview = useMemo(() => {
    if (!text.trim()) return null;
    try {
      const v = viewerFromToken(text);
      if (isExpired(v)) return { error: `This token expired at ${new Date(v.exp * 1000).toLocaleString()}.` };
      return { viewer: v };
    } catch (e) {
      return { error: e.message };
    }
  }, [text]);

  function submit(e) {
    e.preventDefault();
    if (preview?.viewer) onSignIn(text.trim());
  }

  return (
    <form className="signin-form" onSubmit={submit} data-testid="paste-form">
      <label className="field">
        Bearer token (JWT)
        <textarea
          value={text}
          onChange={(e) => setText(e.target.value)}
          rows={4}
          spellCheck={false}
          autoComplete="off"
          placeholder="eyJhbGciOi…"
          data-testid="token-input"
        />
      </label>
      {preview?.error && <p className="form-error">{preview.error}</p>}
      {preview?.viewer && (
        <p className="muted small">
          Role <strong>{preview.viewer.role}</strong>
          {preview.viewer.partner && <> for {preview.viewer.partner}</>}, {preview.viewer.scopes.length} scopes
          {preview.viewer.exp && <>, valid until {new Date(preview.viewer.exp * 1000).toLocaleString()}</>}.
        </p>
      )}
      <p className="muted small">
        The token stays in this browser tab (session storage) and is sent only to this hub.
      </p>
      <button type="submit" className="button primary" disabled={!preview?.viewer} data-testid="paste-signin">
        Sign in with this token
      </button>
    </form>
  );
}

export default function SignIn({ reason, onSignIn }) {
  const [dev, setDev] = useState(undefined);
  const [mode, setMode] = useState('dev');

  useEffect(() => {
    let cancelled = false;
    fetchDevViewers().then((d) => {
      if (cancelled) return;
      setDev(d);
      if (!d) setMode('paste');
    });
    return () => {
      cancelled = true;
    };
  }, []);

  return (
    <div className="signin-backdrop">
      <div className="signin-card" role="dialog" aria-modal="true" aria-labelledby="signin-title" data-testid="signin">
        <h1 id="signin-title">Sign in to the c360 playground</h1>
        {reason && (
          <p className="notice warn" role="alert" data-testid="signin-reason">
            {reason}
          </p>
        )}
        {dev && (
          <div className="tabs" role="tablist">
            <button type="button" role="tab" aria-selected={mode === 'dev'} className={mode === 'dev' ? 'tab active' : 'tab'} onClick={() => setMode('dev')} data-testid="mode-dev">
              Development token
            </button>
            <button type="button" role="tab" aria-selected={mode === 'paste'} className={mode === 'paste' ? 'tab active' : 'tab'} onClick={() => setMode('paste')} data-testid="mode-paste">
              Paste a token
            </button>
          </div>
        )}
        {dev === undefined && <p className="muted">Asking the hub…</p>}
        {dev && mode === 'dev' && <DevPicker dev={dev} onSignIn={onSignIn} />}
        {dev !== undefined && mode === 'paste' && <PasteToken onSignIn={onSignIn} />}
      </div>
    </div>
  );
}
