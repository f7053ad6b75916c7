// The public gRPC API from a second language: @grpc/grpc-js streams tandem.v1.Tandem/Generate from the
// cluster that tests/node/run.sh started, and the ids match what the HTTP API returns for the same
// greedy request.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const address = process.env.TANDEM_GRPC_ADDRESS;
assert.ok(address, 'TANDEM_GRPC_ADDRESS is set by tests/node/run.sh');
const definition = protoLoader.loadSync(path.join(process.env.TANDEM_PROTO_DIR, 'tandem.proto'), {
  keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
});
const { Tandem } = grpc.loadPackageDefinition(definition).tandem.v1;
const client = new Tandem(address, grpc.credentials.createInsecure());

function generate(request) {
  return new Promise((resolve, reject) => {
    const call = client.Generate(request, { deadline: Date.now() + 60_000 });
    const result = { ids: [], text: '', final: null, messages: 0 };
    call.on('data', (m) => {
      result.messages += 1;
      result.ids.push(...m.token_ids);
      result.text += m.text;
      if (m.final) result.final = m.final;
    });
    call.on('error', reject);
    call.on('end', () => resolve(result));
  });
}

test('Generate streams ids and text, then the final report', async () => {
  const r = await generate({ prompt: 'Once upon a time', max_tokens: 10, ignore_eos: true });
  assert.equal(r.ids.length, 10);
  assert.ok(r.messages >= 2);
  assert.equal(r.final.finish_reason, 'FINISH_REASON_LENGTH');
  assert.equal(r.final.completion_tokens, 10);
  assert.ok(r.final.timing.ttft_ms > 0);
  assert.ok(r.final.prefill_worker.length > 0 && r.final.decode_worker.length > 0);
});

test('the gRPC and HTTP APIs give the same greedy text', async () => {
  const prompt = 'The quick brown fox';
  const viaGrpc = await generate({ prompt, max_tokens: 12, ignore_eos: true });
  const response = await fetch(`${process.env.TANDEM_HTTP_URL}/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ prompt, max_tokens: 12, temperature: 0, ignore_eos: true }),
  });
  assert.equal(response.status, 200);
  const viaHttp = await response.json();
  assert.equal(viaHttp.choices[0].text, viaGrpc.text);
  assert.equal(viaHttp.usage.completion_tokens, viaGrpc.ids.length);
});

test('bad input is INVALID_ARGUMENT naming the field', async () => {
  await assert.rejects(generate({ prompt: 'x', max_tokens: 0 }), (e) => {
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.match(e.details, /max_tokens/);
    return true;
  });
  await assert.rejects(generate({ prompt: 'x', sampling: { top_p: 2 } }), (e) => {
    assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
    assert.match(e.details, /top_p/);
    return true;
  });
});

test('the chat endpoint tokenizes exactly what `tandem render-chat` prints', async () => {
  const { execFileSync } = await import('node:child_process');
  const { writeFileSync, mkdtempSync } = await import('node:fs');
  const os = await import('node:os');
  const messages = [
    { role: 'system', content: 'You are brief.' },
    { role: 'user', content: 'Say hello, then stop.' },
  ];
  const dir = mkdtempSync(path.join(os.tmpdir(), 'render-chat-'));
  writeFileSync(path.join(dir, 'messages.json'), JSON.stringify(messages));
  const rendered = execFileSync(process.env.TANDEM_BINARY, [
    'render-chat', '--tokenizer-config', path.join(process.env.TANDEM_MODEL, 'tokenizer_config.json'),
    '--messages', path.join(dir, 'messages.json'), '--add-generation-prompt',
  ]).toString();
  assert.ok(rendered.endsWith('<|assistant|>'), rendered);
  const ids = await new Promise((resolve, reject) => client.Tokenize(
    { text: rendered, add_special_tokens: false }, (e, r) => (e ? reject(e) : resolve(r.ids))));
  const response = await fetch(`${process.env.TANDEM_HTTP_URL}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, max_tokens: 2, temperature: 0 }),
  });
  assert.equal(response.status, 200);
  const chat = await response.json();
  assert.equal(chat.usage.prompt_tokens, ids.length);
});
