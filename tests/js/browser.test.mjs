// The web app of public/ in a real headless Chromium (Debian's `chromium`, driven by the pinned
// `playwright-core`, which never downloads a browser), against a dev server with the mock
// model: sign-in, streaming, stop, resume after a reload, the thread actions, search,
// sharing, branches, feedback, inert model HTML, and a phone-sized screen. Screenshots of
// the main states go to tests/js/screenshots/ (ignored by git).
//
// Starts nothing but the browser: it needs BUDDAHBOT_URL (the dev server's router) and
// BUDDAHBOT_TOKEN. The Rust test `web::the_app_works_in_a_real_browser` runs it; CHROMIUM
// overrides the browser binary.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

const url = process.env.BUDDAHBOT_URL;
const token = process.env.BUDDAHBOT_TOKEN;
const shots = new URL("./screenshots/", import.meta.url).pathname;
mkdirSync(shots, { recursive: true });

// What the mock model says, word by word: replies cycle through these.
const WORDS = "breathe in and notice the quiet mind as it settles like still water under open sky".split(" ");
const mockReply = (tokens) => Array.from({ length: tokens }, (_, i) => WORDS[i % WORDS.length]).join(" ");

let browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // Playwright gives every launch a fresh, temporary --user-data-dir of its own.
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});
after(async () => {
  await browser?.close();
});

// A fresh browser profile (cookies, storage) showing the app; fails the test on a page error.
async function newPage(options = {}) {
  const context = await browser.newContext({ baseURL: url, ...options });
  const page = await context.newPage();
  page.errors = [];
  page.on("pageerror", (error) => page.errors.push(error.message));
  page.on("dialog", (dialog) => {
    page.errors.push(`a native dialog opened: ${dialog.message()}`);
    dialog.dismiss();
  });
  await page.goto("/");
  return page;
}

async function signIn(page, user = `web-${randomUUID()}`) {
  await page.getByLabel("User id").fill(user);
  await page.getByRole("button", { name: "Sign in as a local user" }).click();
  await page.locator("#app").waitFor();
  await whoIs(page, user);
  return user;
}

// The signed-in line (in the sidebar, which a phone shows only on demand).
async function whoIs(page, user) {
  await page.waitForFunction((text) => document.querySelector("#who").textContent === text, `Signed in as ${user}`);
}

async function assertText(locator, text) {
  await locator.filter({ hasText: text }).first().waitFor({ timeout: 10_000 });
}

const replies = (page) => page.locator("article.message.assistant:not(.streaming)");
const live = (page) => page.locator("article.message.streaming .body");

// Waits until nothing streams and the last finished reply reads exactly `text` (a shorter
// mock reply is a prefix of a longer one, so a substring match would pass on the old one).
async function lastReplyIs(page, text) {
  await page.waitForFunction(
    (want) => {
      const bodies = document.querySelectorAll("article.message.assistant:not(.streaming) .body");
      const last = bodies[bodies.length - 1];
      return !document.querySelector(".message.streaming") && last?.innerText.trim() === want;
    },
    text,
    { timeout: 20_000 },
  );
}

async function idle(page) {
  await page.waitForFunction(() => !document.querySelector(".message.streaming") && document.querySelector("#stop").hidden, null, { timeout: 20_000 });
}

async function send(page, text) {
  await page.getByLabel("Message", { exact: true }).fill(text);
  await page.keyboard.press("Enter");
}

async function chatOnce(page, text, tokens) {
  // The messages shown before sending: right after "New chat" the previous thread's may still
  // be on the page, so the reply is found after the new message, not by counting replies.
  const shown = await page.locator("article.message.user").evaluateAll((els) => els.map((el) => el.dataset.id));
  await send(page, text);
  // The page is idle before the request leaves too: wait for the new reply first.
  await page.waitForFunction(
    (old) => {
      const last = document.querySelector("#messages > article.message:last-of-type");
      const asked = last?.previousElementSibling;
      return (
        last?.matches(".assistant:not(.streaming)") &&
        asked?.matches("article.message.user") &&
        !old.includes(asked.dataset.id)
      );
    },
    shown,
    { timeout: 20_000 },
  );
  await idle(page);
  if (tokens) assert.equal((await replies(page).last().locator(".body").innerText()).trim(), mockReply(tokens));
}

test("a new user signs in as a local user and sees the reply grow over several frames", async () => {
  const page = await newPage();
  await page.screenshot({ path: `${shots}signin.png` });
  await signIn(page);
  const options = await page.locator("#model option").allTextContents();
  assert.deepEqual(options, ["Hermes-4-405B", "Hermes-4-70B (default)"]);

  await send(page, "[[mock tokens=30 inter_token_ms=40]] Hello there");
  await live(page).waitFor();
  const lengths = [];
  while (await live(page).count()) {
    const text = await live(page).innerText().catch(() => "");
    lengths.push(text.length);
    await page.waitForTimeout(60);
  }
  const growing = new Set(lengths.filter((n) => n > 0 && n < mockReply(30).length));
  assert.ok(growing.size >= 3, `the reply grew in steps: ${lengths}`);
  await idle(page);
  assert.equal((await replies(page).last().innerText()).includes(mockReply(30)), true);
  const hash = await page.evaluate(() => location.hash);
  await page.locator(`#threads a[href="${hash}"][aria-current="page"]`).waitFor();
  await page.getByRole("button", { name: "New chat" }).click();
  await chatOnce(page, "Plan a quiet morning in Rome", 16);
  await page.screenshot({ path: `${shots}chat.png` });
  assert.deepEqual(page.errors, []);
});

test("stop ends the generation on the server and the partial reply stays after a reload", async () => {
  const page = await newPage();
  await signIn(page);
  await send(page, "[[mock tokens=400 inter_token_ms=30]] Tell me a long story");
  await page.waitForFunction(() => (document.querySelector(".message.streaming .body")?.textContent.length ?? 0) > 40);
  await page.keyboard.press("Escape");
  await idle(page);
  const reply = replies(page).last();
  await assertText(reply.locator(".badge"), "Stopped");
  const partial = (await reply.locator(".body").innerText()).trim();
  assert.ok(partial.length > 0 && partial.length < mockReply(400).length, partial);

  await page.reload();
  await idle(page);
  await assertText(replies(page).last().locator(".badge"), "Stopped");
  assert.equal((await replies(page).last().locator(".body").innerText()).trim(), partial);
  assert.deepEqual(page.errors, []);
});

test("a reply's reasoning shows collapsed above its answer", async () => {
  const page = await newPage();
  await signIn(page);
  await chatOnce(page, "[[mock think=4 tokens=3]] Think first", 3);
  const thought = replies(page).last().locator("details.reasoning");
  assert.equal(await thought.getAttribute("open"), null, "collapsed");
  assert.match(await thought.locator("summary").innerText(), /^Thought for (\d+ s|a moment)$/);
  await thought.locator("summary").click();
  assert.equal((await thought.locator(".thoughts").innerText()).trim(), "hmm the user wants");
  await page.screenshot({ path: `${shots}reasoning.png` });
  assert.deepEqual(page.errors, []);
});

test("a reload during a generation resumes it to the end", async () => {
  const page = await newPage();
  await signIn(page);
  // Long enough (6 s) that a reload on a loaded machine still lands in the middle.
  await send(page, "[[mock tokens=150 inter_token_ms=40]] Keep going");
  await page.waitForFunction(() => (document.querySelector(".message.streaming .body")?.textContent.length ?? 0) > 10);
  await page.waitForFunction(() => location.hash.startsWith("#/c/"));

  await page.reload();
  await live(page).waitFor();
  await page.screenshot({ path: `${shots}resuming.png` });
  await idle(page);
  assert.equal((await replies(page).last().locator(".body").innerText()).trim(), mockReply(150));
  assert.equal(await replies(page).count(), 1);
  assert.deepEqual(page.errors, []);
});

test("rename, tags, pin, search with a highlighted hit, archive, and delete all", async () => {
  const page = await newPage();
  await signIn(page);
  await chatOnce(page, "Where should I go in Italy?", 16);
  await chatOnce(page, "[[mock tokens=3]] And in spring?", 3);
  const first = await page.evaluate(() => location.hash);
  // A second thread, then back to the first through the list.
  await page.getByRole("button", { name: "New chat" }).click();
  await chatOnce(page, "Another topic entirely", 16);
  await page.locator(`#threads a[href="${first}"]`).click();
  await assertText(page.locator("article.message.user"), "And in spring?");

  await page.getByRole("button", { name: "Rename" }).click();
  await page.getByRole("dialog").getByLabel("Title").fill("Trip to Rome");
  await page.getByRole("dialog").getByRole("button", { name: "Save" }).click();
  await assertText(page.locator("#title"), "Trip to Rome");
  await assertText(page.locator("#threads a"), "Trip to Rome");

  await page.getByRole("button", { name: "Tags" }).click();
  await page.getByRole("dialog").getByLabel("Tags, separated by commas").fill("travel, italy");
  await page.getByRole("dialog").getByRole("button", { name: "Save" }).click();
  await assertText(page.locator("#tags .tag"), "italy");

  await page.getByRole("button", { name: "Pin", exact: true }).click();
  await assertText(page.locator("#pin"), "Unpin");
  // The rename already put the chat first (newest first): wait for the list's reload that
  // shows it pinned, not just for its title at the top.
  await page.waitForFunction(() => {
    const first = document.querySelector("#threads li:first-child");
    return first?.querySelector(".pin") && first.textContent.includes("Trip to Rome");
  });
  assert.ok(await page.locator("#threads li:first-child .pin").isVisible());

  await page.getByLabel("Search chats").fill("rome");
  const hit = page.locator("#results mark").first();
  await hit.waitFor();
  assert.equal((await hit.innerText()).toLowerCase(), "rome");
  await page.screenshot({ path: `${shots}search.png` });
  await page.getByLabel("Search chats").fill("");
  await page.locator("#threads").waitFor();

  await page.getByRole("button", { name: "Archive", exact: true }).click();
  await assertText(page.locator("#archive"), "Unarchive");
  await page.waitForFunction(() => ![...document.querySelectorAll("#threads a")].some((a) => a.textContent.includes("Trip to Rome")));
  await page.getByRole("button", { name: "Archived" }).click();
  await assertText(page.locator("#threads a"), "Trip to Rome");
  await page.getByRole("button", { name: "Chats", exact: true }).click();

  await page.getByRole("button", { name: "Delete all chats" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Delete all chats" }).click();
  await page.waitForFunction(() => document.querySelectorAll("#threads li").length === 0);
  assert.deepEqual(page.errors, []);
});

test("a shared link opens read-only when signed out, and stops working once revoked", async () => {
  const page = await newPage();
  await signIn(page);
  await chatOnce(page, "Share this plan", 16);
  const title = await page.locator("#title").innerText();
  await page.getByRole("button", { name: "Share" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Create link" }).click();
  const link = page.getByRole("dialog").getByLabel("Share link");
  await page.waitForFunction(() => document.querySelector("dialog input")?.value.includes("#/shared/"));
  const shared = await link.inputValue();
  await page.screenshot({ path: `${shots}share.png` });

  const reader = await newPage();
  await reader.goto(shared);
  await assertText(reader.locator("#shared-title"), title);
  await assertText(reader.locator("#shared-messages .message.user"), "Share this plan");
  await assertText(reader.locator("#shared-messages .message.assistant"), mockReply(16));
  assert.equal(await reader.locator("#composer").isVisible(), false);
  assert.equal(await reader.locator("#shared-copy").isVisible(), false);
  await reader.screenshot({ path: `${shots}shared.png` });

  await page.getByRole("dialog").getByRole("button", { name: "Revoke link" }).click();
  await page.waitForFunction(() => !document.querySelector("dialog input")?.value);
  await page.getByRole("dialog").getByRole("button", { name: "Done" }).click();
  await reader.reload();
  await assertText(reader.locator("#shared-title"), "This link does not work");
  assert.deepEqual([...page.errors, ...reader.errors], []);
});

test("editing a message makes a branch, the switcher goes back, and feedback sticks", async () => {
  const page = await newPage();
  await signIn(page);
  await chatOnce(page, "Original question", 16);

  await page.locator("article.message.user").getByRole("button", { name: "Edit" }).click();
  await page.getByLabel("Edit your message").fill("[[mock tokens=5]] Edited question");
  await page.getByRole("button", { name: "Save and send" }).click();
  await idle(page);
  const user = page.locator("article.message.user");
  await assertText(user.locator(".body"), "Edited question");
  await assertText(user.locator(".versions"), "2/2");
  await lastReplyIs(page, mockReply(5));
  await page.screenshot({ path: `${shots}branches.png` });

  await user.getByRole("button", { name: "Previous version" }).click();
  await assertText(user.locator(".versions"), "1/2");
  await assertText(user.locator(".body"), "Original question");
  await lastReplyIs(page, mockReply(16));

  await replies(page).last().getByRole("button", { name: "Good reply" }).click();
  await page.waitForFunction(() => document.querySelector('[aria-label="Good reply"]')?.getAttribute("aria-pressed") === "true");
  await page.reload();
  await idle(page);
  assert.equal(await replies(page).last().getByRole("button", { name: "Good reply" }).getAttribute("aria-pressed"), "true");
  assert.equal(await page.locator("article.message.user .versions .count").innerText(), "1/2");
  assert.deepEqual(page.errors, []);
});

test("HTML and javascript: links in a reply are inert", async () => {
  const page = await newPage();
  await signIn(page);
  await chatOnce(
    page,
    '[[mock echo=1]] Look <img src=x onerror="window.pwned=1"> and [click me](javascript:window.pwned=2) ' +
      "<script>window.pwned=3</script> <a href=\"javascript:window.pwned=4\">raw link</a> **bold**",
  );
  const reply = replies(page).last().locator(".body");
  await assertText(reply.locator("strong"), "bold");
  for (const name of ["click me", "raw link"]) {
    const href = await reply.getByText(name).evaluate((el) => el.closest("a")?.getAttribute("href") ?? null);
    assert.ok(!href || !/^\s*javascript:/i.test(href), `${name} has href ${href}`);
    await reply.getByText(name).click();
  }
  assert.equal(await reply.locator("script").count(), 0);
  assert.equal(await reply.locator("[onerror]").count(), 0);
  await page.waitForTimeout(200);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  assert.deepEqual(page.errors, []);
});

test("on a phone-sized screen the chat has no horizontal scroll", async () => {
  const page = await newPage({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true });
  await signIn(page);
  const long = "a".repeat(300);
  await chatOnce(page, `[[mock echo=1]] ${long}\n\n\`\`\`\n${"x = 1; ".repeat(60)}\n\`\`\``);
  await chatOnce(page, "And a normal question", 16);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page is ${overflow}px wider than the screen`);
  await page.screenshot({ path: `${shots}phone.png` });
  await page.getByRole("button", { name: "Show the chat list" }).click();
  await page.locator("#sidebar").getByRole("button", { name: "New chat" }).waitFor();
  await page.screenshot({ path: `${shots}phone-sidebar.png` });
  assert.deepEqual(page.errors, []);
});

test("a bearer token signs in too, and an error reads as a sentence", async () => {
  const page = await newPage();
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Use this token" }).click();
  await page.locator("#app").waitFor();
  await whoIs(page, process.env.BUDDAHBOT_USER);
  await chatOnce(page, "Hi with a token", 16);

  // A refusal reads as a sentence, with the time to wait.
  await send(page, "[[mock status=429 retry_after_secs=7]] Too fast");
  await assertText(page.locator("#error"), "Too many requests. Try again in 7 s.");
  await idle(page);
  await page.screenshot({ path: `${shots}error.png` });
  assert.deepEqual(page.errors, []);
});
