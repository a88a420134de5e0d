// tests/otlp/receiver.js: an OTLP/HTTP trace receiver for tests/630.
//
//   node receiver.js --port-file F --out SPANS.jsonl
//
// Listens on 127.0.0.1 (a free port, written to F once listening).  Every
// POST to /v1/traces must be Content-Type application/x-protobuf; its body
// is decoded as an ExportTraceServiceRequest with the definitions the
// OpenTelemetry project generates from opentelemetry-proto and ships in
// @opentelemetry/otlp-transformer (protobufjs), not with anything of ours.
// Each span becomes one JSON line in SPANS.jsonl (ids in lower-case hex,
// times as decimal strings, attributes as key => string value, the
// resource's service.name); a request that does not decode is answered 400
// and logged as {"error": ...}.  The answer to a good request is an empty
// ExportTraceServiceResponse, as a collector sends.
'use strict';

const fs = require('fs');
const http = require('http');
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root');

const v1 = root.opentelemetry.proto.collector.trace.v1;
const args = {};
for (let i = 2; i < process.argv.length; i += 2)
  args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];

const hex = (b) => (b && b.length ? Buffer.from(b).toString('hex') : '');
const str = (v) => (v === undefined || v === null ? '' : v.toString());
const anyValue = (v) => (v ? (v.stringValue ?? str(v.intValue ?? v.boolValue ?? v.doubleValue)) : '');
const attrs = (list) => Object.fromEntries((list || []).map((kv) => [kv.key, anyValue(kv.value)]));
const log = (obj) => fs.appendFileSync(args.out, JSON.stringify(obj) + '\n');

function spans(req) {
  const out = [];
  for (const rs of req.resourceSpans || []) {
    const resource = attrs(rs.resource && rs.resource.attributes);
    for (const ss of rs.scopeSpans || [])
      for (const s of ss.spans || [])
        out.push({
          service: resource['service.name'], instance: resource['service.instance.id'],
          scope: ss.scope && ss.scope.name,
          trace_id: hex(s.traceId), span_id: hex(s.spanId), parent_span_id: hex(s.parentSpanId),
          name: s.name, kind: s.kind, start: str(s.startTimeUnixNano), end: str(s.endTimeUnixNano),
          attributes: attrs(s.attributes),
          status: { code: (s.status && s.status.code) || 0, message: (s.status && s.status.message) || '' },
        });
  }
  return out;
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    if (req.method !== 'POST' || req.url !== '/v1/traces' ||
        req.headers['content-type'] !== 'application/x-protobuf') {
      log({ error: `unexpected ${req.method} ${req.url} (${req.headers['content-type']})` });
      res.writeHead(415).end();
      return;
    }
    try {
      const decoded = v1.ExportTraceServiceRequest.decode(body);
      const lines = spans(decoded).map((s) => JSON.stringify(s) + '\n').join('');
      fs.appendFileSync(args.out, lines);	// one write per request
      const answer = v1.ExportTraceServiceResponse.encode({}).finish();
      res.writeHead(200, { 'Content-Type': 'application/x-protobuf' }).end(Buffer.from(answer));
    } catch (e) {
      log({ error: `decode: ${e.message}` });
      res.writeHead(400).end();
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  fs.writeFileSync(args['port-file'] + '.tmp', `${server.address().port}\n`);
  fs.renameSync(args['port-file'] + '.tmp', args['port-file']);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
