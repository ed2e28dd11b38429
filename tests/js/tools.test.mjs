// Tool loops with the real clients: the official OpenAI SDK against /api/chat/completions
// (streamed and not), and the AI SDK's Chat (the state machine `useChat` runs on) against
// /api/chat with a client-side tool, `onToolCall`, `addToolOutput` and the automatic follow-up.
//
// Starts nothing: it needs BUDDAHBOT_URL and BUDDAHBOT_TOKEN, and a server whose model is the
// repository's mock (its `[[mock tool_calls=…]]` directive makes it call tools). The Rust test
// `tools::the_real_clients_run_tool_loops` runs it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import OpenAI from "openai";
import { DefaultChatTransport, lastAssistantMessageIsCompleteWithToolCalls } from "ai";
import { Chat, until } from "./chat-state.mjs";

const url = process.env.BUDDAHBOT_URL;
const token = process.env.BUDDAHBOT_TOKEN;
const auth = { authorization: `Bearer ${token}` };

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    },
  },
};

async function thread(id, format) {
  const query = format ? `?format=${format}` : "";
  const response = await fetch(`${url}/api/threads/${id}${query}`, { headers: auth });
  assert.equal(response.status, 200);
  return (await response.json()).messages;
}

function assertStoredLoop(messages, callId) {
  assert.deepEqual(
    messages.map((m) => m.role),
    ["user", "assistant", "tool", "assistant"],
  );
  assert.equal(messages[1].toolCalls[0].id, callId);
  assert.equal(messages[1].toolCalls[0].name, "get_weather");
  assert.equal(messages[1].toolCalls[0].arguments, '{"city":"city-0"}');
  assert.equal(messages[1].finishReason, "tool_calls");
  assert.equal(messages[2].toolCallId, callId);
  assert.ok(messages[3].content.length > 0);
}

test("the OpenAI SDK runs a streamed tool loop and the thread keeps it", async () => {
  const client = new OpenAI({ baseURL: `${url}/api`, apiKey: token });
  const messages = [
    { role: "user", content: "Weather in Oslo? [[mock tool_calls=get_weather]]" },
  ];
  const { data: first, response } = await client.chat.completions
    .create({ model: "Hermes-4-70B", messages, tools: [weatherTool], stream: true })
    .withResponse();
  const threadId = response.headers.get("x-thread-id");
  assert.ok(threadId);
  const calls = [];
  let finish;
  for await (const chunk of first) {
    const choice = chunk.choices[0];
    if (!choice) continue;
    for (const piece of choice.delta.tool_calls ?? []) {
      calls[piece.index] ??= { id: "", name: "", arguments: "" };
      if (piece.id) calls[piece.index].id = piece.id;
      if (piece.function?.name) calls[piece.index].name = piece.function.name;
      calls[piece.index].arguments += piece.function?.arguments ?? "";
    }
    finish = choice.finish_reason ?? finish;
  }
  assert.equal(finish, "tool_calls");
  assert.equal(calls.length, 1);
  assert.equal(calls[0].name, "get_weather");
  const input = JSON.parse(calls[0].arguments);

  messages.push({
    role: "assistant",
    content: null,
    tool_calls: calls.map((c) => ({
      id: c.id,
      type: "function",
      function: { name: c.name, arguments: c.arguments },
    })),
  });
  messages.push({
    role: "tool",
    tool_call_id: calls[0].id,
    content: JSON.stringify({ city: input.city, celsius: 3 }),
  });
  const second = await client.chat.completions.create(
    { model: "Hermes-4-70B", messages, tools: [weatherTool], stream: true },
    { headers: { "x-thread-id": threadId } },
  );
  let text = "";
  for await (const chunk of second) {
    text += chunk.choices[0]?.delta?.content ?? "";
    if (chunk.choices[0]?.finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.ok(text.length > 0, "the model answered after the tool result");
  assert.equal(finish, "stop");

  const stored = await thread(threadId);
  assertStoredLoop(stored, calls[0].id);
  assert.equal(stored[2].content, JSON.stringify({ city: "city-0", celsius: 3 }));
  assert.equal(stored[3].content, text);

  const ui = await thread(threadId, "ui");
  assert.equal(ui.length, 2, "the assistant's steps are one UI message");
  const parts = ui[1].parts;
  assert.deepEqual(
    parts.map((p) => p.type),
    ["step-start", "tool-get_weather", "step-start", "text"],
  );
  assert.equal(parts[1].state, "output-available");
  assert.deepEqual(parts[1].input, { city: "city-0" });
});

test("the OpenAI SDK runs a non-streamed tool loop", async () => {
  const client = new OpenAI({ baseURL: `${url}/api`, apiKey: token });
  const messages = [
    { role: "user", content: "Weather? [[mock tool_calls=get_weather]]" },
  ];
  const { data: first, response } = await client.chat.completions
    .create({ model: "Hermes-4-70B", messages, tools: [weatherTool], tool_choice: "auto" })
    .withResponse();
  const threadId = response.headers.get("x-thread-id");
  assert.equal(first.choices[0].finish_reason, "tool_calls");
  const call = first.choices[0].message.tool_calls[0];
  assert.equal(call.function.name, "get_weather");
  messages.push(first.choices[0].message);
  messages.push({ role: "tool", tool_call_id: call.id, content: "3 degrees" });
  const second = await client.chat.completions.create(
    { model: "Hermes-4-70B", messages, tools: [weatherTool] },
    { headers: { "x-thread-id": threadId } },
  );
  assert.equal(second.choices[0].finish_reason, "stop");
  assert.ok(second.choices[0].message.content.length > 0);
  assertStoredLoop(await thread(threadId), call.id);

  // The same continuation again is recognised: answered from the store, not stored twice.
  const again = await client.chat.completions.create(
    { model: "Hermes-4-70B", messages, tools: [weatherTool] },
    { headers: { "x-thread-id": threadId } },
  );
  assert.equal(again.choices[0].message.content, second.choices[0].message.content);
  assert.equal((await thread(threadId)).length, 4);
});

/** The parts that say what a message holds, without client-only bookkeeping. */
function essentials(message) {
  return {
    id: message.id,
    role: message.role,
    parts: message.parts.map((p) => {
      if (p.type === "text") return { type: p.type, text: p.text };
      if (p.type.startsWith("tool-")) {
        const { type, toolCallId, state, input, output, errorText } = p;
        return { type, toolCallId, state, input, output, errorText };
      }
      return { type: p.type };
    }),
  };
}

test("the AI SDK's Chat runs a client-side tool loop and a reload gives the same messages", async () => {
  const chatId = `tools-${randomUUID()}`;
  const toolCalls = [];
  const errors = [];
  let chat;
  chat = new Chat({
    id: chatId,
    // The tools the model may call travel in the request body, next to the messages.
    transport: new DefaultChatTransport({
      api: `${url}/api/chat`,
      headers: auth,
      body: { tools: [weatherTool] },
    }),
    sendAutomaticallyWhen: lastAssistantMessageIsCompleteWithToolCalls,
    onError: (error) => errors.push(error),
    onToolCall: async ({ toolCall }) => {
      toolCalls.push(toolCall);
      // Not awaited: the output is added once the stream is done, as useChat apps do.
      void chat.addToolOutput({
        tool: toolCall.toolName,
        toolCallId: toolCall.toolCallId,
        output: { city: toolCall.input.city, celsius: 3 },
      });
    },
  });
  await chat.sendMessage({ text: "Weather in Oslo? [[mock tool_calls=get_weather]]" });
  await until(() => {
    const last = chat.messages.at(-1);
    return (
      chat.status === "ready" &&
      last?.role === "assistant" &&
      last.parts.some((p) => p.type === "text" && p.text.length > 0)
    );
  }, "the follow-up reply");
  assert.deepEqual(errors, []);
  assert.equal(toolCalls.length, 1, "onToolCall fired once");
  assert.deepEqual(toolCalls[0].input, { city: "city-0" }, "with the parsed input");

  assert.equal(chat.messages.length, 2, "the follow-up extended the assistant message");
  const live = chat.messages.map(essentials);
  assert.deepEqual(
    live[1].parts.map((p) => p.type),
    ["step-start", "tool-get_weather", "step-start", "text"],
  );
  assert.equal(live[1].parts[1].state, "output-available");

  const reloaded = (await thread(chatId, "ui")).map(essentials);
  assert.deepEqual(reloaded, live);

  const stored = await thread(chatId);
  assert.deepEqual(
    stored.map((m) => m.role),
    ["user", "assistant", "tool", "assistant"],
  );
  assert.deepEqual(stored[2].toolOutput, { city: "city-0", celsius: 3 });
});
