// Drives a running BuddahBot with the real AI SDK client: `DefaultChatTransport` sends the
// request exactly as `useChat` does, and `readUIMessageStream` builds the reply message from
// the chunks, validating each against `ai`'s own schema.
//
// Starts nothing: it needs BUDDAHBOT_URL (e.g. http://127.0.0.1:3000) and BUDDAHBOT_TOKEN (a
// bearer token). BUDDAHBOT_EXPECTED_REPLY, when set, is the text every reply must have (the
// mock model's). The Rust test `ui::the_real_ai_sdk_client_reads_the_stream` runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { DefaultChatTransport, readUIMessageStream } from "ai";

const url = process.env.BUDDAHBOT_URL;
const token = process.env.BUDDAHBOT_TOKEN;
const expected = process.env.BUDDAHBOT_EXPECTED_REPLY;

const transport = new DefaultChatTransport({
  api: `${url}/api/chat`,
  headers: { authorization: `Bearer ${token}` },
});

function userMessage(text) {
  return { id: randomUUID(), role: "user", parts: [{ type: "text", text }] };
}

/** Sends `messages` as a new turn of `chatId`; resolves to the final assistant message. */
async function send(chatId, messages) {
  const stream = await transport.sendMessages({
    chatId,
    messages,
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: undefined,
  });
  const errors = [];
  let last;
  for await (const message of readUIMessageStream({
    stream,
    onError: (error) => errors.push(error),
  })) {
    last = message;
  }
  assert.deepEqual(errors, [], "the stream reported no error");
  assert.ok(last, "the stream produced a message");
  return last;
}

function textOf(message) {
  return message.parts
    .filter((part) => part.type === "text")
    .map((part) => part.text)
    .join("");
}

async function storedMessages(chatId) {
  const response = await fetch(`${url}/api/threads/${chatId}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(response.status, 200);
  return (await response.json()).messages;
}

test("preconditions", () => {
  assert.ok(url, "BUDDAHBOT_URL is set");
  assert.ok(token, "BUDDAHBOT_TOKEN is set");
});

test("a turn sent by DefaultChatTransport reads back as the assistant's message", async () => {
  const chatId = randomUUID().replaceAll("-", "").slice(0, 16);
  const first = userMessage("Hello from the AI SDK");

  const reply = await send(chatId, [first]);

  assert.equal(reply.role, "assistant");
  assert.equal(typeof reply.id, "string");
  assert.ok(reply.id.length > 0, "the reply has an id");
  if (expected !== undefined) assert.equal(textOf(reply), expected);
  assert.equal(reply.metadata?.finishReason, "stop");
  const stored = await storedMessages(chatId);
  assert.equal(stored.length, 2);
  assert.equal(stored[1].id, reply.id, "the reply id is the stored message's");

  // The whole history is resent, as useChat does: exactly two more messages are stored.
  const second = await send(chatId, [first, reply, userMessage("And again")]);

  assert.notEqual(second.id, reply.id);
  if (expected !== undefined) assert.equal(textOf(second), expected);
  const after = await storedMessages(chatId);
  assert.equal(after.length, 4);
  assert.deepEqual(
    after.map((m) => m.role),
    ["user", "assistant", "user", "assistant"],
  );
});

test("a reply that reasons is a UIMessage with a reasoning part before its text", async () => {
  const reasoning = new DefaultChatTransport({
    api: `${url}/api/chat`,
    headers: { authorization: `Bearer ${token}` },
    body: { reasoning: { enabled: true } },
  });
  const chatId = randomUUID().replaceAll("-", "").slice(0, 16);
  const first = userMessage("[[mock think=4 tokens=3 split_at=3,10,30]] Think it over");
  const stream = await reasoning.sendMessages({
    chatId,
    messages: [first],
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: undefined,
  });
  const errors = [];
  let reply;
  for await (const message of readUIMessageStream({ stream, onError: (e) => errors.push(e) })) {
    reply = message;
  }
  assert.deepEqual(errors, []);
  const kinds = reply.parts.filter((p) => p.type !== "step-start").map((p) => p.type);
  assert.deepEqual(kinds, ["reasoning", "text"]);
  const thought = reply.parts.find((p) => p.type === "reasoning");
  assert.equal(thought.text, "hmm the user wants");
  assert.equal(thought.state, "done");
  assert.equal(textOf(reply), "breathe in and ");

  // The thread reads back the same way, ready to seed useChat.
  const response = await fetch(`${url}/api/threads/${chatId}?format=ui`, {
    headers: { authorization: `Bearer ${token}` },
  });
  const { messages } = await response.json();
  assert.deepEqual(messages[1].parts, [
    { type: "reasoning", text: "hmm the user wants" },
    { type: "text", text: "breathe in and " },
  ]);

  // useChat sends the reasoning part back with the history: the turn goes on as usual.
  const second = await send(chatId, [first, reply, userMessage("And then?")]);
  assert.ok(textOf(second).length > 0);
});

test("useChat's resume (reconnectToStream) replays a generation the client dropped", async () => {
  const chatId = randomUUID().replaceAll("-", "").slice(0, 16);
  const abort = new AbortController();
  const stream = await transport.sendMessages({
    chatId,
    messages: [userMessage("[[mock tokens=24 inter_token_ms=25]] Take your time")],
    trigger: "submit-message",
    messageId: undefined,
    abortSignal: abort.signal,
  });
  // Read the first chunks, then go away as a reloading page does.
  const reader = stream.getReader();
  const first = await reader.read();
  assert.equal(first.value?.type, "start");
  abort.abort();
  await reader.cancel().catch(() => {});

  const resumed = await transport.reconnectToStream({ chatId });
  assert.ok(resumed, "a running generation can be resumed");
  const errors = [];
  let message;
  for await (const m of readUIMessageStream({ stream: resumed, onError: (e) => errors.push(e) })) {
    message = m;
  }
  assert.deepEqual(errors, []);
  assert.equal(message.id, first.value.messageId, "the resumed message is the one that started");
  const stored = await storedMessages(chatId);
  assert.equal(stored.length, 2, "the dropped client's turn was stored once");
  assert.equal(textOf(message), stored[1].content, "the replay carries the whole reply");
  assert.equal(message.metadata?.finishReason, "stop");

  const unknown = await transport.reconnectToStream({
    chatId: randomUUID().replaceAll("-", "").slice(0, 16),
  });
  assert.equal(unknown, null, "nothing to resume is a 204");
});
