// Reads a `text/event-stream` response (the AI SDK UI message stream of /api/chat and of
// its resume route) and hands each event's JSON to `onEvent`, up to `data: [DONE]`.

export async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(5).trimStart())
        .join("\n");
      if (!data) continue;
      if (data === "[DONE]") {
        await reader.cancel();
        return;
      }
      onEvent(JSON.parse(data));
    }
  }
}

// What a reply looks like so far, from UI message stream chunks.
export function newReply() {
  return { messageId: null, text: "", reasoning: "", error: null, stopped: false, done: false, title: null };
}

export function applyChunk(reply, chunk) {
  switch (chunk.type) {
    case "start":
      reply.messageId = chunk.messageId ?? reply.messageId;
      break;
    case "reasoning-delta":
      reply.reasoning += chunk.delta;
      break;
    case "text-delta":
      reply.text += chunk.delta;
      break;
    case "error":
      reply.error = chunk.errorText;
      break;
    case "abort":
      reply.stopped = true;
      break;
    case "finish":
      reply.done = true;
      break;
    case "data-thread-title":
      reply.title = chunk.data?.title ?? null;
      break;
  }
  return reply;
}
