// The Doorstep doorbell card: the porch live, when it last rang, the last clip (played in
// the card through Home Assistant's media source) and the share requests waiting for a
// decision (a tap opens the Doorstep panel).
// A plain web component, no build step, nothing fetched from outside the home. The
// integration loads it on every page, so it is in the "Add card" list without a resource
// to add. Configuration: `camera`: the camera entity (camera.front_door) or the camera's
// name on the bridge (front_door). The other entities are found through the entity and
// device registries (the camera's device, the bridge device above it), never by name.

const CARD_TYPE = "doorstep-doorbell-card";
const DOMAIN = "doorstep";
// The dashboard refreshes camera pictures every 10 s; so does this card.
const PICTURE_REFRESH_MS = 10000;

const STRINGS = {
  en: {
    name: "Doorstep doorbell",
    description: "The porch live, the last ring, the last clip and the share requests waiting for you.",
    live: "Live view",
    offline: "Camera offline",
    lastRing: "Last ring",
    never: "Never",
    lastClip: "Last clip",
    noClip: "No clip yet",
    play: "Play",
    close: "Close",
    pending: "Share requests waiting",
    unavailable: "Unavailable",
    noCamera: "No Doorstep camera {camera}: set `camera` to a Doorstep camera entity, such as camera.front_door.",
    needCamera: "camera: name a Doorstep camera (camera.front_door or front_door)",
    reasons: { ring: "ring", motion: "motion", manual: "manual", person: "person" },
  },
  fr: {
    name: "Sonnette Doorstep",
    description: "Le perron en direct, le dernier coup de sonnette, le dernier clip et les demandes de partage en attente.",
    live: "Vue en direct",
    offline: "Caméra hors ligne",
    lastRing: "Dernier coup de sonnette",
    never: "Jamais",
    lastClip: "Dernier clip",
    noClip: "Pas encore de clip",
    play: "Lire",
    close: "Fermer",
    pending: "Demandes de partage en attente",
    unavailable: "Indisponible",
    noCamera: "Aucune caméra Doorstep {camera} : indiquez dans `camera` une entité caméra Doorstep, par exemple camera.front_door.",
    needCamera: "camera : indiquez une caméra Doorstep (camera.front_door ou front_door)",
    reasons: { ring: "sonnette", motion: "mouvement", manual: "manuel", person: "personne" },
  },
};

const strings = (hass) => {
  const language = ((hass && hass.language) || navigator.language || "en").split("-")[0];
  return STRINGS[language] || STRINGS.en;
};

// The browser's own time zone, when it can name it (Home Assistant's frontend checks so too).
const BROWSER_ZONE = (() => {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch (_err) {
    return "";
  }
})();

// The profile's "Date format" choices that put a date's numbers in a given order.
const DATE_ORDERS = { DMY: ["day", "month", "year"], MDY: ["month", "day", "year"], YMD: ["year", "month", "day"] };
const DATE_PARTS = new Set(["day", "month", "year"]);

/** Where a date's numbers are in formatToParts' answer: [first, last] indexes, or null. */
const dateSpan = (parts) => {
  const at = parts.map((part, index) => (DATE_PARTS.has(part.type) ? index : -1)).filter((index) => index >= 0);
  return at.length ? [at[0], at[at.length - 1]] : null;
};

/** Intl.DateTimeFormat(language, options), a date and a time, with its date as the profile's
 * "Date format" asks, the way Home Assistant's own pages show numeric dates: "DMY", "MDY" or
 * "YMD" put the day, month and full year in that order, between the separator of the
 * language's numeric dates; "system" takes the browser's own numeric date. The time part and
 * what joins it to the date stay the language's. "language" (and a frontend without the
 * setting): the language's own date, as before. Throws as Intl.DateTimeFormat does (a zone
 * this browser does not know). */
const datedFormat = (language, dateFormat, options) => {
  const whole = new Intl.DateTimeFormat(language, options);
  const order = DATE_ORDERS[dateFormat];
  if (!order && dateFormat !== "system") return whole;
  const dates = new Intl.DateTimeFormat(dateFormat === "system" ? undefined : language, {
    year: "numeric",
    month: "numeric",
    day: "numeric",
    timeZone: whole.resolvedOptions().timeZone,
  });
  const dateOf = (moment) => {
    const parts = dates.formatToParts(moment);
    if (!order) {
      const [first, last] = dateSpan(parts) || [0, parts.length - 1];
      return parts.slice(first, last + 1).map((part) => part.value).join("");
    }
    // What follows the date (a closing dot, " г.") is left to the whole format's own text.
    const separator = (parts.find((part) => part.type === "literal") || { value: "/" }).value;
    return order.map((type) => (parts.find((part) => part.type === type) || { value: "" }).value).join(separator);
  };
  return {
    format(moment) {
      const parts = whole.formatToParts(moment);
      const span = dateSpan(parts);
      if (!span) return whole.format(moment);
      const text = (list) => list.map((part) => part.value).join("");
      return text(parts.slice(0, span[0])) + dateOf(moment) + text(parts.slice(span[1] + 1));
    },
  };
};

const esc = (text) =>
  String(text ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c],
  );

const UNKNOWN = new Set(["unknown", "unavailable", "", undefined, null]);
// While the bridge is away its entities are unavailable: the card says so rather than
// "Never", "No clip yet" or 0 requests waiting, which would be untrue.
const gone = (state) => state?.state === "unavailable";

/** The Doorstep camera entities, in the registry's order. */
const doorstepCameras = (hass) =>
  Object.values(hass.entities || {}).filter(
    (e) => e.platform === DOMAIN && e.entity_id.startsWith("camera."),
  );

/** What the card shows for `camera` (an entity id or a camera name): entity ids and keys. */
const resolve = (hass, camera) => {
  const entities = hass.entities || {};
  const devices = hass.devices || {};
  let entityId = null;
  if (camera.includes(".")) {
    entityId = camera;
  } else {
    // The camera's device carries the identifier ("doorstep", "<bridge id>_<camera>").
    const byDevice = doorstepCameras(hass).find((e) => {
      const device = devices[e.device_id];
      return (device?.identifiers || []).some(
        ([domain, id]) => domain === DOMAIN && id.slice(id.indexOf("_") + 1) === camera,
      );
    });
    entityId = byDevice ? byDevice.entity_id : `camera.${camera}`;
  }
  const entry = entities[entityId];
  if (!entry || entry.platform !== DOMAIN || !entry.device_id) return null;
  const device = devices[entry.device_id] || {};
  const sibling = (deviceId, key) =>
    Object.values(entities).find(
      (e) => e.platform === DOMAIN && e.device_id === deviceId && e.translation_key === key,
    )?.entity_id || null;
  const bridgeDevice = devices[device.via_device_id] || null;
  const bridgeId =
    (bridgeDevice?.identifiers || []).find(([domain]) => domain === DOMAIN)?.[1] || null;
  const ownId = (device.identifiers || []).find(([domain]) => domain === DOMAIN)?.[1] || "";
  return {
    camera: entityId,
    name: device.name_by_user || device.name || entityId,
    lastRing: sibling(entry.device_id, "last_ring"),
    doorbell: sibling(entry.device_id, "doorbell"),
    lastClip: sibling(entry.device_id, "last_clip"),
    pending: bridgeDevice ? sibling(bridgeDevice.id, "pending_shares") : null,
    bridgeId,
    cameraKey: bridgeId && ownId.startsWith(`${bridgeId}_`) ? ownId.slice(bridgeId.length + 1) : null,
  };
};

const STYLE = `
  [hidden] { display: none !important; }
  ha-card { overflow: hidden; }
  .picture { position: relative; cursor: pointer; background: #000; aspect-ratio: 16 / 9; }
  .picture img { display: block; width: 100%; height: 100%; object-fit: contain; }
  .picture .offline { position: absolute; inset: 0; display: flex; align-items: center;
    justify-content: center; color: #fff; font-size: 16px; }
  .picture .name { position: absolute; left: 0; right: 0; bottom: 0; padding: 8px 12px;
    background: rgba(0, 0, 0, 0.45); color: #fff; font-size: 16px; }
  .rows { display: flex; flex-direction: column; padding: 4px 0; }
  button.row { display: flex; align-items: center; gap: 12px; width: 100%; padding: 10px 16px;
    border: 0; background: none; color: var(--primary-text-color); font: inherit; font-size: 14px;
    text-align: start; cursor: pointer; min-height: 48px; }
  button.row:disabled { cursor: default; }
  button.row:hover:not(:disabled) { background: var(--secondary-background-color, #f5f5f5); }
  button.row ha-icon { color: var(--state-icon-color, var(--primary-color)); flex: none; }
  .label { flex: 1; min-width: 0; }
  .value { color: var(--secondary-text-color); text-align: end; overflow-wrap: anywhere; }
  .count { min-width: 24px; padding: 2px 8px; border-radius: 12px; text-align: center;
    background: var(--secondary-background-color, #eee); color: var(--primary-text-color); }
  .count.waiting { background: var(--warning-color, #ffa600); color: #000; font-weight: 500; }
  .player { padding: 0 16px 12px; }
  .player[hidden] { display: none; }
  .player video { width: 100%; max-height: 50vh; background: #000; border-radius: 8px; }
  .player button { margin-top: 6px; border: 0; border-radius: 18px; padding: 6px 14px; cursor: pointer;
    background: var(--secondary-background-color, #eee); color: var(--primary-text-color); font: inherit; }
  .warning { padding: 16px; color: var(--error-color, #db4437); }
`;

class DoorstepDoorbellCard extends HTMLElement {
  static getStubConfig(hass) {
    const first = doorstepCameras(hass)[0];
    return { camera: first ? first.entity_id : "" };
  }

  constructor() {
    super();
    this._config = null;
    this._hass = null;
    this._shown = "";
    this._timer = null;
    this.attachShadow({ mode: "open" });
    this.shadowRoot.addEventListener("click", (ev) => this._onClick(ev));
  }

  setConfig(config) {
    if (!config || typeof config.camera !== "string" || !config.camera) {
      throw new Error(strings(this._hass).needCamera);
    }
    this._config = { ...config };
    this._shown = "";
    this._built = false;
    if (this._hass) this._update();
  }

  set hass(hass) {
    this._hass = hass;
    if (this._config) this._update();
  }

  get hass() {
    return this._hass;
  }

  getCardSize() {
    return 6;
  }

  getGridOptions() {
    return { columns: 12, min_columns: 6, rows: "auto" };
  }

  connectedCallback() {
    this._timer = setInterval(() => this._refreshPicture(), PICTURE_REFRESH_MS);
  }

  disconnectedCallback() {
    clearInterval(this._timer);
    this._timer = null;
  }

  _state(entityId) {
    return entityId ? this._hass.states[entityId] : undefined;
  }

  _when(iso) {
    const moment = new Date(iso);
    if (Number.isNaN(moment.getTime())) return "";
    return this._timeFormat().format(moment);
  }

  /** Times as Home Assistant's own cards show them to this user: in the time zone chosen in
   * their profile (the browser's, "local", or Home Assistant's, "server"), with their 12 or
   * 24 hour choice and their date order. Without such settings (an older frontend): the
   * browser's zone, the language's hours and date. Made again only when one of those changes. */
  _timeFormat() {
    const hass = this._hass;
    const locale = hass.locale || {};
    const serverZone = (hass.config && hass.config.time_zone) || "";
    const key = [hass.language, locale.time_zone, locale.time_format, locale.date_format, serverZone].join("|");
    if (key === this._timeFormatKey) return this._timeFormatter;
    const options = { dateStyle: "short", timeStyle: "medium" };
    // Like Home Assistant's frontend: its server's zone also when the browser cannot name its own.
    const useServer = locale.time_zone === "server" || (locale.time_zone === "local" && !BROWSER_ZONE);
    if (useServer && serverZone) options.timeZone = serverZone;
    if (locale.time_format === "12" || locale.time_format === "24") {
      options.hourCycle = locale.time_format === "12" ? "h12" : "h23";
    } else if (locale.time_format === "system") {
      // The browser's own hours, in the user's language (Home Assistant's test, too).
      const amPm = new Date("January 1, 2023 22:00:00").toLocaleString().includes("10");
      options.hourCycle = amPm ? "h12" : "h23";
    }
    try {
      this._timeFormatter = datedFormat(hass.language, locale.date_format, options);
    } catch (_err) {
      // A zone this browser does not know: its own, rather than no times at all.
      delete options.timeZone;
      this._timeFormatter = datedFormat(hass.language, locale.date_format, options);
    }
    this._timeFormatKey = key;
    return this._timeFormatter;
  }

  /** resolve() again only when the registries or the configured camera changed, not at
   * every state change of Home Assistant. */
  _resolve() {
    const { entities, devices } = this._hass;
    const camera = this._config.camera;
    const last = this._resolved;
    if (!last || last.entities !== entities || last.devices !== devices || last.camera !== camera) {
      this._resolved = { entities, devices, camera, found: resolve(this._hass, camera) };
    }
    return this._resolved.found;
  }

  _update() {
    const t = strings(this._hass);
    const found = this._resolve();
    if (!found) {
      const key = `missing|${this._config.camera}|${this._hass.language}`;
      if (key === this._shown) return;
      this._shown = key;
      this._built = false;
      this.shadowRoot.innerHTML = `<style>${STYLE}</style><ha-card><div class="warning" role="alert">${esc(
        t.noCamera.replace("{camera}", this._config.camera),
      )}</div></ha-card>`;
      return;
    }
    this._found = found;
    const camera = this._state(found.camera);
    const ring = this._state(found.lastRing) || this._state(found.doorbell);
    const clip = this._state(found.lastClip);
    const pending = this._state(found.pending);
    const locale = this._hass.locale || {};
    const key = JSON.stringify([
      this._hass.language, locale.time_zone, locale.time_format, this._hass.config?.time_zone,
      found, camera?.state, camera?.attributes.entity_picture,
      ring?.state, clip?.state, clip?.attributes.clip_id, pending?.state,
    ]);
    if (key === this._shown) return; // the video and the picture stay as they are
    this._shown = key;
    // Built again when the language changed: the labels are in it.
    if (this._built !== this._hass.language) this._build(t);
    this._built = this._hass.language;

    const root = this.shadowRoot;
    root.querySelector(".name").textContent = found.name;
    const online = camera && !UNKNOWN.has(camera.state) && camera.attributes.entity_picture;
    root.querySelector(".offline").hidden = Boolean(online);
    root.querySelector(".picture img").hidden = !online;
    if (online) this._setPicture(camera.attributes.entity_picture);

    const ringRow = root.querySelector(".ring");
    const ringTime = ring && !UNKNOWN.has(ring.state) ? ring.state : "";
    ringRow.dataset.time = ringTime;
    ringRow.dataset.entity = ring ? ring.entity_id : "";
    ringRow.querySelector(".value").textContent = ringTime
      ? this._when(ringTime)
      : gone(ring) ? t.unavailable : t.never;

    const clipRow = root.querySelector(".clip");
    const clipId = clip && !UNKNOWN.has(clip.state) ? clip.attributes.clip_id : "";
    clipRow.dataset.clip = clipId || "";
    clipRow.disabled = !clipId || !found.bridgeId || !found.cameraKey;
    const reason = clip ? t.reasons[clip.attributes.reason] || clip.attributes.reason || "" : "";
    clipRow.querySelector(".value").textContent = clipId
      ? `${this._when(clip.attributes.start || clip.state)}${reason ? ` · ${reason}` : ""}`
      : gone(clip) ? t.unavailable : t.noClip;

    const pendingRow = root.querySelector(".pending");
    pendingRow.hidden = !found.pending;
    const count = pending && !UNKNOWN.has(pending.state) ? Number(pending.state) : 0;
    pendingRow.dataset.count = gone(pending) ? "" : String(count);
    const badge = pendingRow.querySelector(".count");
    badge.textContent = gone(pending) ? t.unavailable : String(count);
    badge.classList.toggle("waiting", count > 0);
  }

  _build(t) {
    this.shadowRoot.innerHTML = `
      <style>${STYLE}</style>
      <ha-card>
        <div class="picture" role="button" tabindex="0" data-action="live">
          <img class="live" alt="${esc(t.live)}">
          <div class="offline" hidden>${esc(t.offline)}</div>
          <div class="name"></div>
        </div>
        <div class="player" hidden><video controls playsinline></video>
          <button data-action="close">${esc(t.close)}</button></div>
        <div class="rows">
          <button class="row ring" data-action="ring"><ha-icon icon="mdi:doorbell"></ha-icon>
            <span class="label">${esc(t.lastRing)}</span><span class="value"></span></button>
          <button class="row clip" data-action="clip" title="${esc(t.play)}"><ha-icon icon="mdi:filmstrip"></ha-icon>
            <span class="label">${esc(t.lastClip)}</span><span class="value"></span></button>
          <button class="row pending" data-action="pending"><ha-icon icon="mdi:share-variant"></ha-icon>
            <span class="label">${esc(t.pending)}</span><span class="count"></span></button>
        </div>
      </ha-card>`;
    // Its name is what it shows: "Live view", the camera's name (and "Camera offline").
    this.shadowRoot.querySelector(".picture").addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter" && ev.key !== " ") return;
      ev.preventDefault(); // Space opens the view, it does not scroll the page
      this._moreInfo(this._found.camera);
    });
  }

  _setPicture(url) {
    this._picture = url;
    const img = this.shadowRoot.querySelector(".picture img");
    if (img) img.src = `${url}${url.includes("?") ? "&" : "?"}t=${Date.now()}`;
  }

  _refreshPicture() {
    if (this._picture && this._built && !document.hidden) this._setPicture(this._picture);
  }

  _moreInfo(entityId) {
    if (!entityId) return;
    this.dispatchEvent(new CustomEvent("hass-more-info", { detail: { entityId }, bubbles: true, composed: true }));
  }

  _navigate(path) {
    history.pushState(null, "", path);
    window.dispatchEvent(new CustomEvent("location-changed", { detail: { replace: false } }));
  }

  _localDay(iso) {
    // The media source files a clip under its day in Home Assistant's time zone.
    const zone = this._hass.config && this._hass.config.time_zone;
    return new Intl.DateTimeFormat("en-CA", { timeZone: zone || undefined, year: "numeric", month: "2-digit", day: "2-digit" })
      .format(new Date(iso));
  }

  async _playClip() {
    const found = this._found;
    const clip = this._state(found.lastClip);
    if (!clip || !clip.attributes.clip_id) return;
    const day = this._localDay(clip.attributes.start || clip.state);
    const id = `media-source://${DOMAIN}/${found.bridgeId}/${found.cameraKey}/${day}/${clip.attributes.clip_id}`;
    try {
      const resolved = await this._hass.callWS({ type: "media_source/resolve_media", media_content_id: id });
      const player = this.shadowRoot.querySelector(".player");
      const video = player.querySelector("video");
      video.src = this._hass.hassUrl ? this._hass.hassUrl(resolved.url) : resolved.url;
      player.hidden = false;
      video.focus(); // above the rows: the keyboard is where the clip plays
      video.play().catch(() => {}); // autoplay may be refused: the controls remain
    } catch (_err) {
      this._moreInfo(found.lastClip);
    }
  }

  _onClick(ev) {
    const target = ev.target.closest("[data-action]");
    if (!target || !this._found) return;
    const action = target.dataset.action;
    if (action === "live") this._moreInfo(this._found.camera);
    else if (action === "ring") this._moreInfo(target.dataset.entity);
    else if (action === "clip") this._playClip();
    else if (action === "pending") this._navigate(`/${DOMAIN}`);
    else if (action === "close") {
      const player = this.shadowRoot.querySelector(".player");
      player.querySelector("video").pause();
      player.hidden = true;
      this.shadowRoot.querySelector(".clip").focus(); // back where the clip was asked for
    }
  }
}

// Home Assistant's app installs a scoped custom-element registry when it loads, in place of
// the browser's: a card defined in the browser's registry before that (this module can load
// first) is one the dashboards never find. So the card is defined once the app is there,
// in the registry the app uses.
const defineCard = () => {
  if (customElements.get(CARD_TYPE)) return;
  customElements.define(CARD_TYPE, DoorstepDoorbellCard);
  const t = strings(null);
  window.customCards = window.customCards || [];
  window.customCards.push({
    type: CARD_TYPE,
    name: t.name,
    description: t.description,
    preview: true,
  });
};

if (customElements.get("home-assistant")) defineCard();
else customElements.whenDefined("home-assistant").then(defineCard);
