// Modal dialogs on <dialog>: focus moves into them, Esc closes them, and focus returns to
// what opened them.
import { h } from "./dom.js";

// Shows a modal with `content` and `buttons` ([{label, value, primary, danger}]); resolves
// with the value of the button pressed (null for Esc), after `check(value)` allowed it.
export function modal(title, content, buttons, check = () => true) {
  const opener = document.activeElement;
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { "aria-label": title },
      h(
        "form",
        { method: "dialog" },
        h("h2", {}, title),
        content,
        h(
          "div",
          { class: "actions" },
          buttons.map((b) =>
            h("button", { value: b.value, class: b.danger ? "danger" : b.primary ? "primary" : "" }, b.label),
          ),
        ),
      ),
    );
    dialog.addEventListener("submit", (event) => {
      if (!check(event.submitter?.value)) event.preventDefault();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      opener?.focus?.();
      resolve(dialog.returnValue || null);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export async function ask({ title, label, value = "", confirm = "Save" }) {
  const input = h("input", { value, "aria-label": label, autocomplete: "off" });
  const content = h("label", {}, label, input);
  const pressed = modal(title, content, [
    { label: "Cancel", value: "cancel" },
    { label: confirm, value: "ok", primary: true },
  ]);
  input.select();
  return (await pressed) === "ok" ? input.value : null;
}

export async function confirmAction({ title, message, confirm }) {
  const pressed = await modal(title, h("p", {}, message), [
    { label: "Cancel", value: "cancel" },
    { label: confirm, value: "ok", danger: true },
  ]);
  return pressed === "ok";
}
