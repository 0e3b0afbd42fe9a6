// ⑥ The inbox, live: new notifications arrive over server-sent events and are announced.
const list = document.querySelector("[data-notes]");
const live = document.querySelector("[data-live]");
if (list && "EventSource" in window) {
  const lang = list.dataset.lang;
  const seen = new Set([...list.querySelectorAll("[data-id]")].map((li) => li.dataset.id));
  const source = new EventSource("/api/v1/relief/notifications/stream");
  source.addEventListener("notification", (event) => {
    const note = JSON.parse(event.data);
    if (seen.has(String(note.id))) return;
    seen.add(String(note.id));
    const text = lang === "ja" ? note.message_ja : note.message_en;
    const li = document.createElement("li");
    li.className = "note-item unread fresh";
    li.dataset.id = note.id;
    const p = document.createElement("p");
    p.textContent = text;
    const meta = document.createElement("p");
    meta.className = "muted";
    const time = document.createElement("time");
    time.dateTime = note.at;
    time.textContent = new Date(note.at).toLocaleString(lang === "ja" ? "ja-JP" : "en-GB", {
      timeZone: "Asia/Tokyo",
    });
    const link = document.createElement("a");
    link.href = `/relief/matches/${note.match_id}`;
    link.textContent = "→";
    link.setAttribute("aria-label", text);
    meta.append(time, " ", link);
    li.append(p, meta);
    list.prepend(li);
    document.querySelector("[data-empty]")?.remove();
    live.textContent = `${list.dataset.msgNew} ${text}`;
  });
}
