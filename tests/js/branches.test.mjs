// Branches with the real AI SDK client: the `Chat` state machine `useChat` runs on, against
// /api/chat. `regenerate()` and `sendMessage({text, messageId})` (an edit) make siblings on
// the server; switching `activeLeafId` changes what `GET /api/threads/:id` and `?format=ui`
// return, and a client seeded from the UI shape continues the branch it shows.
//
// Starts nothing: it needs BUDDAHBOT_URL and BUDDAHBOT_TOKEN, and a server whose model is the
// repository's mock. The Rust test `branches::the_ai_sdk_client_edits_regenerates_and_switches`
// runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { DefaultChatTransport } from "ai";
import { Chat, until } from "./chat-state.mjs";

const url = process.env.BUDDAHBOT_URL;
const token = process.env.BUDDAHBOT_TOKEN;
const auth = { authorization: `Bearer ${token}` };

function newChat(id, messages, errors) {
  return new Chat({
    id,
    messages,
    transport: new DefaultChatTransport({ api: `${url}/api/chat`, headers: auth }),
    onError: (error) => errors.push(error),
  });
}

async function settled(chat) {
  await until(() => chat.status === "ready", "the reply");
}

async function thread(id, query = "") {
  const response = await fetch(`${url}/api/threads/${id}${query}`, { headers: auth });
  assert.equal(response.status, 200);
  return response.json();
}

const text = (message) =>
  message.parts.filter((p) => p.type === "text").map((p) => p.text).join("");

test("edit and regenerate through the AI SDK client make siblings; switching changes what reads show", async () => {
  const id = `branches-${randomUUID()}`;
  const errors = [];
  const chat = newChat(id, [], errors);

  await chat.sendMessage({ text: "First question" });
  await settled(chat);
  const firstReply = chat.messages[1].id;

  // regenerate(): a second version of the reply.
  await chat.regenerate();
  await settled(chat);
  assert.equal(chat.messages.length, 2);
  const secondReply = chat.messages[1].id;
  assert.notEqual(secondReply, firstReply);
  let stored = (await thread(id)).messages;
  assert.deepEqual(stored.map((m) => m.id), [chat.messages[0].id, secondReply]);
  assert.deepEqual(stored[1].siblingIds, [firstReply, secondReply]);
  assert.deepEqual(stored[1].branch, { index: 1, count: 2 });

  // sendMessage({text, messageId}): an edit of the question, answered on its own branch.
  const original = chat.messages[0].id;
  await chat.sendMessage({ text: "First question, edited", messageId: original });
  await settled(chat);
  assert.equal(chat.messages.length, 2);
  assert.equal(text(chat.messages[0]), "First question, edited");
  let page = await thread(id);
  stored = page.messages;
  assert.equal(stored[0].content, "First question, edited");
  assert.equal(stored[0].siblingIds.length, 2);
  assert.equal(stored[0].siblingIds[0], original);
  assert.equal(stored[1].id, chat.messages[1].id, "the client and the server agree on the reply");
  assert.equal(page.thread.activeLeafId, chat.messages[1].id);

  // A regenerate right after the edit means the edited question (the client still calls it
  // by the original id).
  await chat.regenerate();
  await settled(chat);
  stored = (await thread(id)).messages;
  assert.equal(stored[0].content, "First question, edited");
  assert.equal(stored[1].id, chat.messages[1].id);
  assert.equal(stored[1].branch.count, 2);

  // Switch back to the original question: its newest reply is the regenerated one.
  const switched = await fetch(`${url}/api/threads/${id}`, {
    method: "PATCH",
    headers: { ...auth, "content-type": "application/json" },
    body: JSON.stringify({ activeLeafId: original }),
  });
  assert.equal(switched.status, 200);
  assert.equal((await switched.json()).activeLeafId, secondReply);
  const ui = (await thread(id, "?format=ui")).messages;
  assert.deepEqual(ui.map((m) => m.id), [original, secondReply]);
  assert.equal(text(ui[0]), "First question");
  assert.deepEqual(ui[0].metadata.branch, { index: 0, count: 2 });

  // A client seeded from the UI shape (a reload) continues that branch.
  const reloaded = newChat(id, ui, errors);
  await reloaded.sendMessage({ text: "Follow-up" });
  await settled(reloaded);
  stored = (await thread(id)).messages;
  assert.deepEqual(
    stored.map((m) => m.id),
    reloaded.messages.map((m) => m.id),
  );
  assert.equal(stored[1].id, secondReply);
  assert.equal(stored[2].content, "Follow-up");
  assert.deepEqual(errors, []);
});
