// What the real-client tests share: the AI SDK's `Chat` (the state machine `useChat` runs
// on) over the smallest `ChatState`, and a poll.
import assert from "node:assert/strict";
import { AbstractChat } from "ai";

/** The smallest `ChatState`: what a framework binding (React, Vue, Svelte) keeps. */
class State {
  constructor(messages = []) {
    this.status = "ready";
    this.error = undefined;
    this.messages = messages;
  }
  pushMessage(message) {
    this.messages = [...this.messages, message];
  }
  popMessage() {
    this.messages = this.messages.slice(0, -1);
  }
  replaceMessage(index, message) {
    this.messages = this.messages.map((m, i) => (i === index ? message : m));
  }
  snapshot(thing) {
    return structuredClone(thing);
  }
}

/** A `Chat` seeded with `messages` (none by default). */
export class Chat extends AbstractChat {
  constructor({ messages, ...options }) {
    super({ ...options, state: new State(messages) });
  }
}

/** Waits (polling every 20 ms, at most `ms`) until `check()` holds. */
export async function until(check, what, ms = 10_000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.fail(`timed out waiting for ${what}`);
}
