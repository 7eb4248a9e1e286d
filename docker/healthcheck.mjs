// The images' HEALTHCHECK: exit 0 when GET /health answers 200 (model loaded, not draining).
// The slim runtime images have no curl; node is there anyway.
const port = process.env.RELU_SERVE_PORT || '8080';
try {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(4000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
