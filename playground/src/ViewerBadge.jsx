import { useEffect, useRef, useState } from 'react';

function left(seconds) {
  if (seconds <= 0) return 'expired';
  if (seconds < 60) return `${seconds} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min`;
}

/** Who is signed in, from the token's claims (decoded here for display only). */
export default function ViewerBadge({ viewer }) {
  const [now, setNow] = useState(() => Date.now());
  const [open, setOpen] = useState(false);
  const ref = useRef(null);

  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(t);
  }, []);

  useEffect(() => {
    if (!open) return undefined;
    const close = (e) => {
      if (!ref.current?.contains(e.target)) setOpen(false);
    };
    document.addEventListener('pointerdown', close);
    return () => document.removeEventListener('pointerdown', close);
  }, [open]);

  const remaining = viewer.exp ? Math.max(0, Math.round(viewer.exp - now / 1000)) : null;
  const expires = viewer.exp ? new Date(viewer.exp * 1000) : null;

  return (
    <div className="viewer" ref={ref}>
      <button
        type="button"
        className="viewer-badge"
        onClick={() => setOpen((o) => !o)}
        aria-expanded={open}
        data-testid="viewer-badge"
        data-role={viewer.role}
        data-partner={viewer.partner ?? ''}
      >
        <span className={`role-pill role-${viewer.role}`}>{viewer.role}</span>
        {viewer.partner && <span className="viewer-partner">{viewer.partner}</span>}
        <span className="viewer-scopes">{viewer.scopes.length} scopes</span>
        {remaining !== null && (
          <span className={remaining < 120 ? 'viewer-exp soon' : 'viewer-exp'} title={expires.toLocaleString()}>
            {remaining > 0 ? `expires in ${left(remaining)}` : "expired"}
          </span>
        )}
      </button>
      {open && (
        <div className="viewer-details" role="dialog" aria-label="Token details" data-testid="viewer-details">
          <dl>
            <dt>Role</dt>
            <dd>{viewer.role}</dd>
            {viewer.partner && (
              <>
                <dt>Partner</dt>
                <dd>{viewer.partner}</dd>
              </>
            )}
            {viewer.purpose && (
              <>
                <dt>Purpose</dt>
                <dd>{viewer.purpose}</dd>
              </>
            )}
            <dt>Subject</dt>
            <dd>{viewer.subject ?? '—'}</dd>
            <dt>Scopes</dt>
            <dd className="scopes-line">
              {viewer.scopes.length ? viewer.scopes.map((s) => <code key={s}>{s}</code>) : 'none'}
            </dd>
            <dt>Issued</dt>
            <dd>{viewer.iat ? new Date(viewer.iat * 1000).toLocaleString() : '—'}</dd>
            <dt>Expires</dt>
            <dd>{expires ? `${expires.toLocaleString()} (in ${left(remaining)})` : 'never (no exp claim)'}</dd>
            {viewer.jti && (
              <>
                <dt>Token id</dt>
                <dd>
                  <code>{viewer.jti}</code>
                </dd>
              </>
            )}
          </dl>
          <p className="muted small">
            Read from the token in your browser, for display. The hub checks the token on every request and decides
            what you may see.
          </p>
        </div>
      )}
    </div>
  );
}
