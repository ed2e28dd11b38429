// The Responses and Conversations APIs with the official OpenAI SDK (`baseURL` = the API's
// `/api`): responses plain and streamed, a chain by `previous_response_id`, a conversation
// and its items, retrieve, delete; and the model list.
//
// Starts nothing: it needs BUDDAHBOT_URL and BUDDAHBOT_TOKEN, and a server whose model is the
// repository's mock. The Rust test `responses::the_openai_sdk_runs_responses_and_conversations`
// runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";

const url = process.env.BUDDAHBOT_URL;
const token = process.env.BUDDAHBOT_TOKEN;
const client = new OpenAI({ baseURL: `${url}/api`, apiKey: token });

test("the model list", async () => {
  const ids = [];
  for await (const model of client.models.list()) {
    assert.equal(model.object, "model");
    ids.push(model.id);
  }
  assert.deepEqual(ids, ["Hermes-4-405B", "Hermes-4-70B"]);
  const model = await client.models.retrieve("Hermes-4-70B");
  assert.equal(model.id, "Hermes-4-70B");
  assert.equal(model.default, true);
  await assert.rejects(client.models.retrieve("gpt-0"), OpenAI.NotFoundError);
});

test("a response, plain and streamed", async () => {
  const plain = await client.responses.create({ model: "Hermes-4-70B", input: "Say hi." });
  assert.match(plain.id, /^resp_/);
  assert.equal(plain.object, "response");
  assert.equal(plain.status, "completed");
  assert.ok(plain.output_text.length > 0);
  assert.equal(plain.output[0].type, "message");
  assert.deepEqual(plain.output[0].content[0].annotations, []);
  assert.ok(plain.usage.total_tokens > 0);

  const stream = await client.responses.create({
    model: "Hermes-4-70B",
    input: [{ role: "user", content: [{ type: "input_text", text: "Stream it." }] }],
    instructions: "Be brief.",
    stream: true,
  });
  const types = [];
  const numbers = [];
  let text = "";
  let completed;
  for await (const event of stream) {
    types.push(event.type);
    numbers.push(event.sequence_number);
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.completed") completed = event.response;
  }
  assert.deepEqual(numbers, numbers.map((_, i) => i), "sequence numbers 0, 1, 2, … without gaps");
  assert.equal(types[0], "response.created");
  assert.equal(types[1], "response.in_progress");
  assert.equal(types.at(-1), "response.completed");
  for (const kind of [
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
  ]) {
    assert.ok(types.includes(kind), `${kind} was sent`);
  }
  assert.equal(completed.output[0].content[0].text, text);
  assert.equal(completed.instructions, "Be brief.");

  const again = await client.responses.retrieve(completed.id);
  assert.equal(again.output_text, text);
  assert.equal(again.instructions, "Be brief.");
});

test("a chain of three by previous_response_id", async () => {
  const first = await client.responses.create({ model: "Hermes-4-70B", input: "one" });
  const second = await client.responses.create({
    model: "Hermes-4-70B",
    input: "two",
    previous_response_id: first.id,
  });
  const third = await client.responses.create({
    model: "Hermes-4-70B",
    input: "three",
    previous_response_id: second.id,
  });
  assert.equal(third.previous_response_id, second.id);
  const inputs = await client.responses.inputItems.list(third.id);
  assert.deepEqual(
    inputs.data.map((item) => item.content[0].text),
    ["three"],
    "a response's input items are its own",
  );
  // Deleted: gone, and 404 after.
  await client.responses.delete(third.id);
  await assert.rejects(client.responses.retrieve(third.id), (err) => err.status === 404);
});

test("a conversation holds the items of its responses", async () => {
  const conversation = await client.conversations.create({ metadata: { topic: "demo" } });
  assert.match(conversation.id, /^conv_/);
  assert.deepEqual(conversation.metadata, { topic: "demo" });
  const a = await client.responses.create({
    model: "Hermes-4-70B",
    input: "first question",
    conversation: conversation.id,
  });
  const b = await client.responses.create({
    model: "Hermes-4-70B",
    input: "second question",
    conversation: { id: conversation.id },
  });
  assert.equal(b.conversation.id, conversation.id);

  const ascending = await client.conversations.items.list(conversation.id, { order: "asc" });
  assert.deepEqual(
    ascending.data.map((item) => [item.role, item.content[0].text]),
    [
      ["user", "first question"],
      ["assistant", a.output_text],
      ["user", "second question"],
      ["assistant", b.output_text],
    ],
  );
  const descending = await client.conversations.items.list(conversation.id);
  assert.deepEqual(
    descending.data.map((item) => item.id),
    ascending.data.map((item) => item.id).reverse(),
    "newest first by default",
  );
  const page = await client.conversations.items.list(conversation.id, {
    order: "asc",
    limit: 2,
  });
  assert.equal(page.data.length, 2);
  assert.equal(page.has_more, true);
  const next = await client.conversations.items.list(conversation.id, {
    order: "asc",
    after: page.data[1].id,
  });
  assert.deepEqual(
    next.data.map((item) => item.id),
    ascending.data.slice(2).map((item) => item.id),
  );

  // The conversation is a thread: the same messages through /api/threads.
  const thread = await fetch(`${url}/api/threads/${conversation.id}`, {
    headers: { authorization: `Bearer ${token}` },
  }).then((r) => r.json());
  assert.deepEqual(
    thread.messages.map((m) => m.content),
    ["first question", a.output_text, "second question", b.output_text],
  );

  const gone = await client.conversations.delete(conversation.id);
  assert.equal(gone.deleted, true);
  await assert.rejects(client.conversations.retrieve(conversation.id), (err) => err.status === 404);
});

test("a background stream dropped early resumes with starting_after", async () => {
  const stream = await client.responses.create({
    model: "Hermes-4-70B",
    input: "Take your time. [[mock tokens=40 inter_token_ms=15]]",
    background: true,
    stream: true,
  });
  let id;
  let last = -1;
  const seen = [];
  for await (const event of stream) {
    id ??= event.response?.id;
    last = event.sequence_number;
    seen.push(event);
    if (seen.length === 6) break; // the client goes away
  }
  assert.ok(id);
  const rest = await client.responses.retrieve(id, { stream: true, starting_after: last });
  const numbers = [];
  let text = seen
    .filter((e) => e.type === "response.output_text.delta")
    .map((e) => e.delta)
    .join("");
  let completed;
  for await (const event of rest) {
    numbers.push(event.sequence_number);
    if (event.type === "response.output_text.delta") text += event.delta;
    if (event.type === "response.completed") completed = event.response;
  }
  assert.equal(numbers[0], last + 1, "exactly the rest");
  assert.deepEqual(numbers, numbers.map((_, i) => last + 1 + i), "without gaps");
  assert.ok(completed, "ends with response.completed");
  assert.equal(completed.output_text ?? completed.output[0].content[0].text, text);
  const stored = await client.responses.retrieve(id);
  assert.equal(stored.status, "completed");
  assert.equal(stored.background, true);
});

test("cancel ends a slow background response and keeps what it said", async () => {
  const started = await client.responses.create({
    model: "Hermes-4-70B",
    input: "A long one. [[mock tokens=400 inter_token_ms=20]]",
    background: true,
  });
  assert.equal(started.status, "in_progress");
  await new Promise((resolve) => setTimeout(resolve, 400));
  const polled = await client.responses.retrieve(started.id);
  assert.equal(polled.status, "in_progress");
  const cancelled = await client.responses.cancel(started.id);
  assert.equal(cancelled.status, "cancelled");
  const partial = cancelled.output[0].content[0].text;
  assert.ok(partial.length > 0, "the partial text is kept");
  const again = await client.responses.cancel(started.id);
  assert.equal(again.status, "cancelled", "cancel is idempotent");
  assert.equal((await client.responses.retrieve(started.id)).output[0].content[0].text, partial);
});

test("a response that reasons has a reasoning item before its message, streamed or not", async () => {
  const input = "[[mock think=3 tokens=2]] Think first.";
  const plain = await client.responses.create({
    model: "Hermes-4-70B",
    input,
    reasoning: { effort: "medium" },
  });
  assert.deepEqual(plain.output.map((item) => item.type), ["reasoning", "message"]);
  assert.deepEqual(plain.output[0].content, [{ type: "reasoning_text", text: "hmm the user" }]);
  assert.equal(plain.output_text, "breathe in ");
  assert.equal(plain.reasoning.effort, "medium");
  assert.equal(plain.usage.output_tokens_details.reasoning_tokens, 3);

  // The SDK's own stream helper puts the events together into the same response.
  const stream = client.responses.stream({
    model: "Hermes-4-70B",
    input,
    reasoning: { effort: "high" },
  });
  let reasoning = "";
  stream.on("response.reasoning_text.delta", (event) => {
    reasoning += event.delta;
  });
  const streamed = await stream.finalResponse();
  assert.equal(reasoning, "hmm the user");
  assert.deepEqual(streamed.output.map((item) => item.type), ["reasoning", "message"]);
  assert.equal(streamed.output[0].content[0].text, "hmm the user");
  assert.equal(streamed.output_text, "breathe in ");
});
