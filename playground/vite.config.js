import { defineConfig } from 'vite';

// The Content-Security-Policy the hub sends with every playground response. `npm run
// preview` sends it too, so that a bundle that would break it fails here first.
export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "worker-src 'self' blob:",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

// Where `npm run dev` and `npm run preview` send /graphql and /dev/*: a hub of yours.
const hub = process.env.C360_HUB ?? 'http://127.0.0.1:18360';
const proxy = {
  '/graphql': { target: hub, changeOrigin: true },
  '/dev': { target: hub, changeOrigin: true },
  '/readyz': { target: hub, changeOrigin: true },
};

export default defineConfig({
  base: '/',
  esbuild: { jsx: 'automatic', legalComments: 'none' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    // Chromium, Firefox and Safari all support <link rel=modulepreload>.
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 4096,
    reportCompressedSize: true,
    rollupOptions: {
      onwarn(warning, warn) {
        // React libraries mark their modules "use client" for server components; moot here.
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
      output: {
        // Stable, content-hashed names: the same sources and lockfile give the same dist.
        entryFileNames: 'assets/[name]-[hash].js',
        chunkFileNames: 'assets/[name]-[hash].js',
        assetFileNames: 'assets/[name]-[hash][extname]',
      },
    },
  },
  worker: { format: 'es' },
  server: { port: 5173, strictPort: false, proxy },
  // PLAYGROUND_CSP tries another policy against the built bundle.
  preview: { port: 4173, headers: { 'Content-Security-Policy': process.env.PLAYGROUND_CSP ?? CSP }, proxy },
});
