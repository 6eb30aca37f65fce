'use strict';
// pmmg-static: static file server for the PMMG N3XUS R3CORDINGS M3DIA 3NGIN3 browser
// client (N3XUS-SYSTEM-PMMG, phase 11, owned by PUABO Holdings LLC). PMMG is browser-only:
// this server delivers the files in public/ and does nothing else with them.
// Standard library only, so the image builds offline.
const http = require('node:http');
const fs = require('node:fs');
const path = require('node:path');

const SERVICE = 'pmmg-static';
const { version: VERSION } = require('./package.json');
const DEFAULT_PORT = 3010;
const PUBLIC_DIR = path.join(__dirname, 'public');
const SPEC = JSON.parse(fs.readFileSync(path.join(__dirname, 'openapi.json'), 'utf8'));

const CONTENT_TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'application/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
};

function log(fields) {
  process.stdout.write(JSON.stringify({ time: new Date().toISOString(), service: SERVICE, ...fields }) + '\n');
}

function send(req, res, status, body, contentType, headers = {}) {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body);
  res.writeHead(status, {
    'Content-Type': contentType,
    'Content-Length': data.length,
    'X-Content-Type-Options': 'nosniff',
    ...headers,
  });
  res.end(req.method === 'HEAD' ? undefined : data);
}

function sendJson(req, res, status, body, headers = {}) {
  send(req, res, status, JSON.stringify(body), 'application/json; charset=utf-8', headers);
}

// The file under public/ a URL path names, or null when it names nothing there
// (including every attempt to climb out of public/).
function resolvePublic(pathname) {
  let decoded;
  try {
    decoded = decodeURIComponent(pathname);
  } catch (err) {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const relative = decoded === '/' ? 'index.html' : decoded.replace(/^\/+/, '');
  const file = path.resolve(PUBLIC_DIR, relative);
  if (!file.startsWith(PUBLIC_DIR + path.sep)) return null;
  return file;
}

function handler(req, res) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    return sendJson(req, res, 405, { error: 'method not allowed', method: req.method }, { Allow: 'GET, HEAD' });
  }
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/health') return sendJson(req, res, 200, { status: 'ok', service: SERVICE });
  if (url.pathname === '/openapi.json') return sendJson(req, res, 200, SPEC);

  const file = resolvePublic(url.pathname);
  if (!file) return sendJson(req, res, 404, { error: 'not found', path: url.pathname });
  fs.readFile(file, (err, data) => {
    if (err) return sendJson(req, res, 404, { error: 'not found', path: url.pathname });
    const type = CONTENT_TYPES[path.extname(file)] || 'application/octet-stream';
    return send(req, res, 200, data, type, { 'Cache-Control': 'public, max-age=300' });
  });
  return undefined;
}

function createServer() {
  return http.createServer(handler);
}

function start({ port = Number(process.env.PORT) || DEFAULT_PORT, host = process.env.HOST || '0.0.0.0' } = {}) {
  const server = createServer();
  // As PID 1 in a container, node ignores SIGTERM unless it handles it.
  const stop = (signal) => {
    log({ event: 'stopping', signal });
    server.close(() => process.exit(0));
    if (typeof server.closeAllConnections === 'function') server.closeAllConnections();
    setTimeout(() => process.exit(0), 500).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  server.listen(port, host, () => log({ event: 'listening', host, port: server.address().port, version: VERSION }));
  return server;
}

module.exports = { createServer, handler, start, resolvePublic, SERVICE, PUBLIC_DIR };

if (require.main === module) {
  start();
}
