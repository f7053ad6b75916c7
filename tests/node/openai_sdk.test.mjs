// The official OpenAI SDK for Node against a real tandem cluster (tests/node/run.sh starts it):
// completions and chat completions, streaming and not, the SDK's error classes, and a client that
// aborts a stream (its KV must come back on both workers).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';

const baseURL = process.env.TANDEM_HTTP_URL;
assert.ok(baseURL, 'TANDEM_HTTP_URL is set by tests/node/run.sh');
// No retries: a 429 or 503 must surface as the error it is.
const client = new OpenAI({ baseURL, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });

async function models() {
  const list = await client.models.list();
  return list.data;
}

// Sum of a metric over every worker's /metrics.
async function workerMetric(name) {
  let sum = 0;
  for (const url of (process.env.TANDEM_WORKER_METRICS || '').split(',').filter(Boolean)) {
    const text = await (await fetch(url)).text();
    for (const line of text.split('\n')) {
      if (line.startsWith(name)) sum += Number(line.split(' ').pop());
    }
  }
  return sum;
}

const kvBlocksUsed = () => workerMetric('tandem_engine_kv_blocks_used');

test('models lists the served model', async () => {
  const data = await models();
  assert.equal(data.length, 1);
  assert.equal(data[0].object, 'model');
  assert.equal(data[0].id, 'tiny-chat');
});

test('a greedy completion: text, finish reason, usage, and tandem\'s report', async () => {
  const completion = await client.completions.create({
    model: 'tiny-chat', prompt: 'Once upon a time', max_tokens: 12, temperature: 0, ignore_eos: true,
  });
  assert.equal(completion.object, 'text_completion');
  assert.equal(completion.choices.length, 1);
  assert.equal(typeof completion.choices[0].text, 'string');
  assert.ok(completion.choices[0].text.length > 0);
  assert.equal(completion.choices[0].finish_reason, 'length');
  assert.equal(completion.usage.completion_tokens, 12);
  assert.ok(completion.usage.prompt_tokens > 1);
  assert.equal(completion.usage.total_tokens, completion.usage.prompt_tokens + 12);
  assert.ok(completion.tandem.timing.ttft_ms > 0);
  assert.equal(completion.tandem.slo.ttft_met, true);
});

test('streaming gives the same text as one greedy response, then usage', async () => {
  const request = { model: 'tiny-chat', prompt: 'The quick brown fox', max_tokens: 16, temperature: 0, ignore_eos: true };
  const whole = await client.completions.create(request);
  const stream = await client.completions.create({ ...request, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.text;
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  assert.ok(chunks >= 3, `${chunks} chunks`);
  assert.equal(text, whole.choices[0].text);
  assert.equal(finish, 'length');
  assert.deepEqual(usage, whole.usage);
});

test('logprobs: the chosen tokens\' log probabilities, the same streaming or not', async () => {
  const request = { model: 'tiny-chat', prompt: 'Once upon', max_tokens: 6, temperature: 0, ignore_eos: true, logprobs: 0 };
  const whole = await client.completions.create(request);
  const lp = whole.choices[0].logprobs;
  assert.equal(lp.tokens.length, 6);
  assert.equal(lp.token_logprobs.length, 6);
  assert.equal(lp.tokens.join(''), whole.choices[0].text);
  for (const x of lp.token_logprobs) assert.ok(x <= 0 && x > -50, `logprob ${x}`);
  const stream = await client.completions.create({ ...request, stream: true });
  const streamed = [];
  for await (const chunk of stream) {
    for (const choice of chunk.choices) if (choice.logprobs) streamed.push(...choice.logprobs.token_logprobs);
  }
  assert.deepEqual(streamed, lp.token_logprobs);
  await assert.rejects(client.completions.create({ ...request, logprobs: 3 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'logprobs');
});

test('seeded sampling is reproducible through the API', async () => {
  const request = { model: 'tiny-chat', prompt: 'Hello', max_tokens: 10, temperature: 0.9, top_p: 0.95, seed: 1234 };
  const a = await client.completions.create(request);
  const b = await client.completions.create(request);
  assert.equal(a.choices[0].text, b.choices[0].text);
});

test('chat completions render the chat template, streaming and not', async () => {
  const messages = [
    { role: 'system', content: 'You are brief.' },
    { role: 'user', content: 'Say hello.' },
  ];
  const chat = await client.chat.completions.create({ model: 'tiny-chat', messages, max_tokens: 8, temperature: 0 });
  assert.equal(chat.object, 'chat.completion');
  assert.equal(chat.choices[0].message.role, 'assistant');
  assert.equal(typeof chat.choices[0].message.content, 'string');
  assert.ok(['length', 'stop'].includes(chat.choices[0].finish_reason));
  // The rendered prompt is what `tandem render-chat` prints for these messages: its token count.
  assert.ok(chat.usage.prompt_tokens > 10, `${chat.usage.prompt_tokens} prompt tokens`);

  const stream = await client.chat.completions.create({ model: 'tiny-chat', messages, max_tokens: 8, temperature: 0, stream: true });
  let content = '';
  let role = null;
  for await (const chunk of stream) {
    const delta = chunk.choices[0]?.delta ?? {};
    if (delta.role) role = delta.role;
    content += delta.content ?? '';
  }
  assert.equal(role, 'assistant');
  assert.equal(content, chat.choices[0].message.content);
});

test('bad requests raise the SDK\'s error classes with the field named', async () => {
  await assert.rejects(
    client.completions.create({ model: 'tiny-chat', prompt: 'x', temperature: -1 }),
    (e) => e instanceof OpenAI.BadRequestError && e.status === 400 && e.param === 'temperature');
  await assert.rejects(
    client.completions.create({ model: 'no-such-model', prompt: 'x' }),
    (e) => e instanceof OpenAI.NotFoundError && e.status === 404);
  await assert.rejects(
    client.completions.create({ model: 'tiny-chat', prompt: 'x', n: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'n');
  await assert.rejects(
    client.completions.create({ model: 'tiny-chat', prompt: 'x', max_tokens: 100000 }),
    (e) => e instanceof OpenAI.BadRequestError && /max_tokens/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model: 'tiny-chat', messages: [{ role: 'user', content: 'x' }], logprobs: true, top_logprobs: 2 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'top_logprobs');
});

test('an aborted stream stops its decode and frees its KV on both workers', async () => {
  const tokensBefore = await workerMetric('tandem_decode_tokens_total');
  const controller = new AbortController();
  const stream = await client.completions.create(
    { model: 'tiny-chat', prompt: 'A long story:', max_tokens: 1500, temperature: 0, ignore_eos: true, stream: true },
    { signal: controller.signal });
  let seen = 0;
  try {
    for await (const chunk of stream) {
      seen += chunk.choices.length;
      if (seen >= 3) controller.abort();
    }
  } catch (e) {
    // Depending on where the abort lands, the SDK ends the iteration or throws its abort error.
    assert.ok(e.name === 'AbortError' || e instanceof OpenAI.APIUserAbortError, String(e));
  }
  assert.ok(seen >= 3 && seen < 1500, `${seen} chunks before the abort took effect`);
  const deadline = Date.now() + 5000;
  let used = await kvBlocksUsed();
  while (used !== 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    used = await kvBlocksUsed();
  }
  assert.equal(used, 0, 'every KV block is free again');
  // The decode worker stopped soon after the abort instead of generating all 400 tokens.
  const generated = (await workerMetric('tandem_decode_tokens_total')) - tokensBefore;
  assert.ok(generated < 1000, `${generated} of 1500 tokens decoded after an abort at the third chunk`);
});
