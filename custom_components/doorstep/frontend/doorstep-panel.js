// The Doorstep panel: share requests (approve, deny, revoke, copy the link), clips
// by camera and reason, played through Home Assistant's media source, and (for
// administrators) the audit log's newest records and whether it verifies.
// A plain web component: HA's frontend sets `hass`, `narrow` and `panel` on it. No build
// step and nothing fetched from outside the home; data comes from the integration's
// websocket commands (doorstep/shares, doorstep/decide, doorstep/clips, doorstep/audit);
// a clip is forgotten with the doorstep.forget_clip action. doorstep/subscribe tells the
// open panel what changed (a wall tablet keeps it open for days): a new clip is added at
// the top, the share requests are asked for again.

const STRINGS = {
  en: {
    title: "Doorstep",
    menu: "Menu",
    shares: "Share requests",
    noShares: "No share requests.",
    clips: "Clips",
    noClips: "No clips.",
    moreClips: "Older clips ({count} more)",
    camera: "Camera",
    reason: "Reason",
    all: "All",
    ring: "Ring",
    motion: "Motion",
    manual: "Manual",
    person: "Person",
    requester: "Requested by",
    cameras: "Cameras",
    window: "Footage",
    deadline: "Decide before",
    decidedBy: "Decided by",
    revokedBy: "Revoked by",
    legal: "Legal request",
    authority: "Authority",
    reference: "Reference",
    legalBasis: "Legal basis",
    approvedBy: "Approved by",
    problem: "Problem",
    secondApprover: "A legal request needs a second approver: someone else must approve it too.",
    link: "Link",
    linkExpires: "Expires",
    approve: "Approve",
    approveUnredacted: "Approve without redaction",
    deny: "Deny",
    revoke: "Revoke",
    copy: "Copy link",
    linkInsideOnly:
      "Home Assistant has no address for the internet (Settings → System → Network): this link works only where this browser reaches Home Assistant.",
    copied: "Link copied",
    clipForgotten: "Clip forgotten.",
    play: "Play",
    forget: "Forget",
    confirmForget:
      "Forget this clip? The clip, its snapshot and its thumbnail are erased for good; only an audit record that it was erased (by whom, when) stays.",
    close: "Close",
    connectionLost: "Home Assistant is not connected (restarting?): this page updates once it is back.",
    onlyApprovers: "Only the approvers can decide on share requests.",
    notConnected:
      "{title}: the bridge is not connected. Settings → Devices & services → Doorstep says why.",
    confirmUnredacted: "Release this footage without blurring faces?",
    audit: "Audit log",
    verified: "Verified",
    verifiedDetail: "{count} records, last no. {last}",
    verifiedDetailOne: "1 record, no. {last}",
    pastHead: "The last record was written as the bridge stopped (crash window): it is recorded at the next start.",
    broken: "NOT intact",
    brokenDetail: "Record {record}{file}: {problem}",
    brokenHint: "Someone changed or removed records, or the disk is damaged. Keep a copy of the audit folder.",
    noRecords: "No records.",
    columnWhen: "When",
    columnWhat: "What",
    columnShare: "Share or camera",
    columnWho: "Who",
    share: "Share",
    kinds: {
      request: "Share requested",
      request_rejected: "Request refused",
      notification: "Approvers notified",
      approve: "Approved",
      deny: "Denied",
      decision: "Decided",
      decision_refused: "Decision refused",
      render_start: "Preparing footage",
      ready: "Footage ready",
      render: "Preparation failed",
      download: "Downloaded",
      download_refused: "Download refused",
      signed: "Footage signed",
      revoke: "Revoked",
      expiry: "Expired",
      purge: "Export deleted",
      forget: "Share forgotten",
      clip_deleted: "Clip deleted",
      clip_erased: "Clip erased on request",
      connection_blocked: "Connection blocked",
      repair: "Log repaired",
      repeated: "Repeated requests summed up",
      log_created: "Log started",
      audit_recovered: "Record recovered after a crash",
      clock_step: "System clock set; deadlines moved with it",
    },
    states: {
      pending: "Waiting for a decision",
      approved: "Approved",
      rendering: "Preparing",
      ready: "Ready",
      expired: "Expired",
      revoked: "Revoked",
      denied: "Denied",
      empty: "No footage",
      failed: "Failed",
      rejected: "Refused",
    },
  },
  fr: {
    title: "Doorstep",
    menu: "Menu",
    shares: "Demandes de partage",
    noShares: "Aucune demande de partage.",
    clips: "Clips",
    noClips: "Aucun clip.",
    moreClips: "Clips plus anciens ({count} de plus)",
    camera: "Caméra",
    reason: "Motif",
    all: "Tous",
    ring: "Sonnette",
    motion: "Mouvement",
    manual: "Manuel",
    person: "Personne",
    requester: "Demandé par",
    cameras: "Caméras",
    window: "Images",
    deadline: "Décider avant",
    decidedBy: "Décidé par",
    revokedBy: "Révoqué par",
    legal: "Réquisition",
    authority: "Autorité",
    reference: "Référence",
    legalBasis: "Base légale",
    approvedBy: "Accepté par",
    problem: "Problème",
    secondApprover: "Une réquisition doit être acceptée deux fois : une autre personne doit aussi l'accepter.",
    link: "Lien",
    linkExpires: "Expire",
    approve: "Accepter",
    approveUnredacted: "Accepter sans floutage",
    deny: "Refuser",
    revoke: "Révoquer",
    copy: "Copier le lien",
    linkInsideOnly:
      "Home Assistant n'a pas d'adresse pour Internet (Paramètres → Système → Réseau) : ce lien ne fonctionne que là où ce navigateur joint Home Assistant.",
    copied: "Lien copié",
    clipForgotten: "Clip oublié.",
    play: "Lire",
    forget: "Oublier",
    confirmForget:
      "Oublier ce clip ? Le clip, sa photo et sa vignette sont effacés définitivement ; seul un enregistrement d'audit de l'effacement (par qui, quand) reste.",
    close: "Fermer",
    connectionLost: "Home Assistant n'est pas connecté (redémarrage ?) : cette page se met à jour à son retour.",
    onlyApprovers: "Seuls les approbateurs peuvent décider des demandes de partage.",
    notConnected:
      "{title} : le pont n'est pas connecté. Paramètres → Appareils et services → Doorstep dit pourquoi.",
    confirmUnredacted: "Publier ces images sans flouter les visages ?",
    audit: "Journal d'audit",
    verified: "Vérifié",
    verifiedDetail: "{count} enregistrements, dernier n° {last}",
    verifiedDetailOne: "1 enregistrement, n° {last}",
    pastHead: "Le dernier enregistrement a été écrit pendant l'arrêt du pont (fenêtre de plantage) : il sera consigné au prochain démarrage.",
    broken: "ALTÉRÉ",
    brokenDetail: "Enregistrement {record}{file} : {problem}",
    brokenHint: "Des enregistrements ont été modifiés ou supprimés, ou le disque est abîmé. Gardez une copie du dossier audit.",
    noRecords: "Aucun enregistrement.",
    columnWhen: "Quand",
    columnWhat: "Quoi",
    columnShare: "Partage ou caméra",
    columnWho: "Qui",
    share: "Partage",
    kinds: {
      request: "Partage demandé",
      request_rejected: "Demande rejetée",
      notification: "Approbateurs notifiés",
      approve: "Accepté",
      deny: "Refusé",
      decision: "Décidé",
      decision_refused: "Décision rejetée",
      render_start: "Préparation des images",
      ready: "Images prêtes",
      render: "Échec de la préparation",
      download: "Téléchargé",
      download_refused: "Téléchargement refusé",
      signed: "Images signées",
      revoke: "Révoqué",
      expiry: "Expiré",
      purge: "Export supprimé",
      forget: "Partage oublié",
      clip_deleted: "Clip supprimé",
      clip_erased: "Clip effacé sur demande",
      connection_blocked: "Connexion bloquée",
      repair: "Journal réparé",
      repeated: "Requêtes répétées résumées",
      log_created: "Journal créé",
      audit_recovered: "Enregistrement récupéré après un plantage",
      clock_step: "Horloge système réglée ; échéances décalées d'autant",
    },
    states: {
      pending: "En attente de décision",
      approved: "Acceptée",
      rendering: "En préparation",
      ready: "Prête",
      expired: "Expirée",
      revoked: "Révoquée",
      denied: "Refusée",
      empty: "Aucune image",
      failed: "Échec",
      rejected: "Rejetée",
    },
  },
};

const REASONS = ["", "ring", "person", "motion", "manual"];
const REVOCABLE = new Set(["approved", "rendering", "ready"]);
// Share states change on the bridge (rendering, expiry): look again this often (while the
// page is visible).
const REFRESH_MS = 4000;
// The audit log is checked whole on the bridge: when the share requests changed (their steps
// are its records), after a decision or a forgotten clip, and otherwise every this many
// refreshes (downloads, retention, blocked connections).
const AUDIT_EVERY = 15;
const AUDIT_RECORDS = 20;
// Clips asked at a time; "Older clips" asks for the next ones.
const CLIP_PAGE = 50;
// The next page is asked from the oldest clip shown on (by its start, not by a count: clips
// recorded or forgotten meanwhile move no page); this many more are asked, for the clips
// shown that start at that same moment.
const CLIP_OVERLAP = 10;
// The most clips one doorstep/clips answer holds (the integration's limit).
const MAX_CLIPS_ASKED = 200;

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

/** A selector for a control drawn again from the same data (its data-* attributes), to give
 * the keyboard focus back to it once a list is redrawn; null for other elements. */
const focusSelector = (el) => {
  if (!el || !el.dataset) return null;
  if (el.matches("select.camera")) return "select.camera";
  const keys = ["action", "bridge", "share", "clip", "reason"].filter((k) => el.dataset[k] !== undefined);
  return keys.length ? keys.map((k) => `[data-${k}="${CSS.escape(el.dataset[k])}"]`).join("") : null;
};

const STYLE = `
  :host { display: block; min-height: 100%; background: var(--primary-background-color);
    color: var(--primary-text-color); font-family: var(--paper-font-body1_-_font-family, sans-serif); }
  header { display: flex; align-items: center; gap: 8px; height: 56px; padding: 0 16px;
    background: var(--app-header-background-color, var(--primary-color));
    color: var(--app-header-text-color, var(--text-primary-color, #fff)); font-size: 20px; }
  header button { background: none; border: 0; color: inherit; cursor: pointer; padding: 8px; }
  main { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px;
    padding: 16px; max-width: 1200px; margin: 0 auto; box-sizing: border-box; }
  @media (max-width: 600px) { main { grid-template-columns: minmax(0, 1fr); padding: 8px; } }
  section { background: var(--card-background-color, #fff); border-radius: var(--ha-card-border-radius, 12px);
    box-shadow: var(--ha-card-box-shadow, none); border: 1px solid var(--divider-color, #e0e0e0);
    padding: 16px; min-width: 0; }
  h2 { margin: 0 0 12px; font-size: 18px; font-weight: 500; }
  .share { border-top: 1px solid var(--divider-color, #e0e0e0); padding: 12px 0; }
  .share:first-of-type { border-top: 0; padding-top: 0; }
  .top { display: flex; justify-content: space-between; gap: 8px; align-items: baseline; flex-wrap: wrap; }
  .who { font-weight: 500; }
  .state { font-size: 12px; padding: 2px 8px; border-radius: 10px;
    background: var(--secondary-background-color, #eee); white-space: nowrap; }
  .state.pending { background: var(--warning-color, #ffa600); color: #000; }
  /* White text on Home Assistant's default colours (#03a9f4, #db4437, #43a047) is too faint to
     read (under 4.5:1): the fills are darkened, in any theme. */
  .state.ready { background: color-mix(in srgb, var(--success-color, #43a047) 70%, #000); color: #fff; }
  .badges { display: flex; gap: 6px; flex-wrap: wrap; }
  .state.legal { background: color-mix(in srgb, var(--error-color, #db4437) 85%, #000); color: #fff; }
  .reason { margin: 6px 0; overflow-wrap: anywhere; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 6px 0;
    font-size: 14px; color: var(--secondary-text-color); }
  dd { margin: 0; overflow-wrap: anywhere; }
  .actions { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 8px; }
  button.action { border: 0; border-radius: 18px; padding: 8px 16px; font-size: 14px; cursor: pointer;
    background: color-mix(in srgb, var(--primary-color) 70%, #000); color: var(--text-primary-color, #fff); }
  button.action.secondary { background: var(--secondary-background-color, #eee);
    color: var(--primary-text-color); }
  button.action.danger { background: color-mix(in srgb, var(--error-color, #db4437) 85%, #000); color: #fff; }
  button.action:disabled { opacity: .5; cursor: default; }
  .link { display: flex; gap: 8px; align-items: center; margin-top: 6px; }
  .link input { flex: 1; min-width: 0; padding: 6px; font: inherit; font-size: 13px;
    border: 1px solid var(--divider-color, #ccc); border-radius: 6px;
    background: var(--secondary-background-color, #f5f5f5); color: var(--primary-text-color); }
  .note, .empty { color: var(--secondary-text-color); font-size: 14px; }
  .error { color: var(--error-color, #db4437); margin: 0 16px; }
  .filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 12px; }
  .chip { border: 1px solid var(--divider-color, #ccc); border-radius: 16px; padding: 4px 12px;
    background: none; color: var(--primary-text-color); cursor: pointer; font-size: 14px; }
  .chip[aria-pressed="true"] { background: color-mix(in srgb, var(--primary-color) 70%, #000);
    color: var(--text-primary-color, #fff); border-color: transparent; }
  select { font: inherit; padding: 4px; }
  ul { list-style: none; margin: 0; padding: 0; }
  li.clip { display: flex; justify-content: space-between; align-items: center; gap: 8px;
    padding: 8px 0; border-top: 1px solid var(--divider-color, #e0e0e0); }
  li.clip:first-child { border-top: 0; }
  li.more { padding-top: 8px; border-top: 1px solid var(--divider-color, #e0e0e0); }
  li.clip { flex-wrap: wrap; }
  li.clip .clip-actions { display: flex; gap: 8px; }
  li.clip .clip-error { flex-basis: 100%; margin: 0; font-size: 14px; overflow-wrap: anywhere; }
  .player video { width: 100%; max-height: 50vh; background: #000; border-radius: 8px; }
  .player { margin-bottom: 12px; }
  .player[hidden] { display: none; }
  .audit-section { grid-column: 1 / -1; }
  .share:focus, h2:focus { outline: none; }
  .share:focus-visible { outline: 2px solid var(--primary-color); outline-offset: 2px; }
  /* Read by screen readers, not shown: what the page shows changing already. */
  .status { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
    white-space: nowrap; }
  .check { border-radius: 8px; padding: 10px 12px; margin-bottom: 12px; }
  .error-text { color: var(--error-color, #db4437); }
  h3 { margin: 12px 0 8px; font-size: 16px; font-weight: 500; }
  .check.ok { background: var(--secondary-background-color, #eee); }
  .check.ok { border-left: 4px solid var(--success-color, #43a047); }
  .check.broken { background: var(--error-color, #db4437); color: #fff; font-size: 16px; }
  .check.broken strong { font-size: 20px; display: block; }
  .check p { margin: 4px 0 0; overflow-wrap: anywhere; }
  table.records { width: 100%; border-collapse: collapse; table-layout: fixed; font-size: 14px; }
  table.records th { text-align: start; font-size: 12px; font-weight: 500; color: var(--secondary-text-color);
    padding: 0 12px 4px 0; }
  table.records th:first-child { width: calc(10em + 12px); }
  tr.record td { padding: 6px 12px 6px 0; border-top: 1px solid var(--divider-color, #e0e0e0);
    vertical-align: top; overflow-wrap: anywhere; }
  table.records th:last-child, tr.record td:last-child { padding-right: 0; }
  tr.record .when { color: var(--secondary-text-color); }
  /* A phone: two values a line, as before; the headers stay for screen readers only (the
     roles in the markup keep the table a table for them, whatever the display). */
  @media (max-width: 600px) {
    table.records, table.records tbody { display: block; }
    table.records thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
      white-space: nowrap; }
    tr.record { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 4px 12px;
      padding: 6px 0; border-top: 1px solid var(--divider-color, #e0e0e0); }
    tr.record:first-child { border-top: 0; }
    tr.record td { padding: 0; border: 0; }
  }
`;

class DoorstepPanel extends HTMLElement {
  constructor() {
    super();
    this._hass = null;
    this._data = null;
    this._sharesKey = "";
    this._camera = null; // "bridge_id/camera"
    this._reason = "";
    this._clips = null;
    this._clipsLeft = 0; // on the bridge, older than the clips shown (camera and reason shown)
    this.clipPage = CLIP_PAGE; // clips asked at a time (a test asks for fewer)
    this._clipErrors = {}; // clip id: why forgetting it was refused
    this._busy = false;
    this._timer = null;
    this._language = null;
    this._audits = null; // per bridge: doorstep/audit's answer, or {bridge_id, error}
    this._refreshes = 0;
    this.attachShadow({ mode: "open" });
    this.shadowRoot.addEventListener("click", (ev) => this._onClick(ev));
    this.shadowRoot.addEventListener("change", (ev) => this._onChange(ev));
  }

  set hass(hass) {
    const first = this._hass === null;
    this._hass = hass;
    if (first) {
      this._build();
      this._refresh();
      this._subscribe();
    } else if (hass.language !== this._language) {
      this._build();
      this._renderShares(true);
      this._renderClipControls();
      this._renderClips();
      this._renderAudit();
    } else if (this._timeFormatKey !== undefined && this._timeKey() !== this._timeFormatKey) {
      // The user chose another time zone, hour format or date order in their profile: times follow.
      this._renderShares(true);
      this._keepScroll(() => this._renderClips());
      this._renderAudit();
    }
  }

  get hass() {
    return this._hass;
  }

  set narrow(narrow) {
    this._narrow = narrow;
    const menu = this.shadowRoot.querySelector("header button");
    if (menu) menu.hidden = !narrow;
  }

  connectedCallback() {
    this._timer = setInterval(() => {
      if (!document.hidden) this._refresh();
    }, REFRESH_MS);
    if (this._hass) {
      this._refresh();
      this._subscribe();
    }
  }

  disconnectedCallback() {
    clearInterval(this._timer);
    this._timer = null;
    if (this._unsubscribe) {
      const unsubscribe = this._unsubscribe;
      this._unsubscribe = null;
      unsubscribe.then((unsub) => unsub && unsub()).catch(() => {}); // gone with the connection
    }
  }

  /** Be told when what the panel shows changes; home-assistant-js-websocket subscribes
   * again after Home Assistant restarts. */
  _subscribe() {
    if (this._unsubscribe || !this.isConnected || !this._hass.connection) return;
    this._unsubscribe = this._hass.connection
      .subscribeMessage((event) => this._onChanged(event), { type: "doorstep/subscribe" })
      .catch(() => null); // refused: the refresh every few seconds still follows the shares
  }

  /** Something the panel shows changed on a bridge: the share requests are asked for again,
   * and the clip list follows when the newest clip of the camera shown is another, or when
   * its bridge keeps another number of clips (one below the newest deleted by retention or
   * forgotten elsewhere). The first event answers the subscription (the page asked for
   * everything as it opened). */
  _onChanged(event) {
    const before = this._lastClips;
    const countsBefore = this._clipCounts || {};
    this._lastClips = event.last_clips || {};
    this._clipCounts = event.clip_counts || {};
    if (before === undefined) return;
    this._refresh();
    if (!this._camera) return;
    const [bridgeId, camera] = this._camera.split("/");
    const newest = (this._lastClips[bridgeId] || {})[camera];
    const counted = this._clipCounts[bridgeId] !== countsBefore[bridgeId];
    if (counted || newest !== (before[bridgeId] || {})[camera]) this._followClips();
  }

  get _t() {
    const language = (this._hass && this._hass.language) || "en";
    return STRINGS[language.split("-")[0]] || STRINGS.en;
  }

  _build() {
    this._language = this._hass.language;
    const t = this._t;
    this.shadowRoot.innerHTML = `
      <style>${STYLE}</style>
      <header>
        <button class="menu" title="${esc(t.menu)}" aria-label="${esc(t.menu)}" ${this._narrow ? "" : "hidden"}>
          <ha-icon icon="mdi:menu"></ha-icon></button>
        <span>${esc(t.title)}</span>
      </header>
      <p class="error" role="alert"></p>
      <p class="status" role="status"></p>
      <main>
        <section class="shares-section"><h2>${esc(t.shares)}</h2><div class="shares"></div></section>
        <section class="clips-section"><h2 tabindex="-1">${esc(t.clips)}</h2>
          <div class="filters"></div>
          <div class="player" hidden><video controls playsinline></video>
            <div class="actions"><button class="action secondary" data-action="close">${esc(t.close)}</button></div>
          </div>
          <ul class="clips"></ul>
        </section>
        <section class="audit-section" ${this._isAdmin ? "" : "hidden"}><h2>${esc(t.audit)}</h2>
          <div class="audits"></div></section>
      </main>`;
  }

  get _isAdmin() {
    return Boolean(this._hass && this._hass.user && this._hass.user.is_admin);
  }

  /** An error as words: Home Assistant's message, or what a bare error code means. */
  _message(err) {
    if (typeof err === "string") return err;
    if (err && err.message) return err.message;
    // home-assistant-js-websocket rejects with a bare code (3: connection lost) while Home
    // Assistant restarts: "3" would mean nothing to anyone.
    return this._t.connectionLost;
  }

  /** Show an error above the panel; `fromRefresh` ones go once a refresh succeeds. */
  _error(err, fromRefresh = false) {
    const box = this.shadowRoot.querySelector(".error");
    this._refreshFailed = Boolean(err) && fromRefresh;
    if (box) box.textContent = err ? this._message(err) : "";
  }

  /** Say `text` to screen readers (the status line): what changed out of sight of the focus. */
  _announce(text) {
    const status = this.shadowRoot.querySelector(".status");
    if (!status || !text) return;
    // Emptied first: the same words twice are said twice.
    status.textContent = "";
    setTimeout(() => {
      status.textContent = text;
    }, 100);
  }

  /** Draw `box` again with `render`; the control that had the keyboard focus in it (or the
   * one named by `wanted`) has it again when it is still there. True when it is. */
  _keepFocus(box, render, wanted = null) {
    const focused = this.shadowRoot.activeElement;
    const selector = wanted || (focused && box.contains(focused) ? focusSelector(focused) : null);
    render();
    if (!selector) return false;
    const again = box.querySelector(selector);
    if (!again || again.disabled) return false;
    again.focus({ preventScroll: true });
    return true;
  }

  async _refresh() {
    if (!this._hass || this._busy) return;
    try {
      this._data = await this._hass.callWS({ type: "doorstep/shares" });
    } catch (err) {
      this._error(err, true);
      return;
    }
    if (this._refreshFailed) this._error(null); // Home Assistant is back
    const changed = this._renderShares(false);
    // A bridge gone down: its audit box says so now, not at the next round; one that could
    // not be asked is asked again at each refresh, like the clip list.
    const reach = this._data.bridges.map((b) => `${b.bridge_id}:${b.reachable}`).join(" ");
    const reachChanged = this._reach !== undefined && reach !== this._reach;
    this._reach = reach;
    const auditFailed = (this._audits || []).some((audit) => audit.error);
    if (this._refreshes++ % AUDIT_EVERY === 0 || changed || reachChanged || auditFailed) this._loadAudit();
    if (!this._followCameras() && this._clipsError) this._loadClips(); // the bridge may be back
  }

  /** The bridges' cameras, for the selector: "bridge_id/camera" and its name. */
  get _cameras() {
    return this._data.bridges.flatMap((b) =>
      b.cameras.map((c) => ({ value: `${b.bridge_id}/${c.key}`, name: this._cameraLabel(b, c.name) })),
    );
  }

  /** A camera's name, after its bridge's title when there are several bridges: two houses
   * may each have a "Front door", and an approver must know whose footage they release. Two
   * bridges left with the same name (each calls itself "Doorstep" by default) add their id. */
  _cameraLabel(bridge, name) {
    const several = this._data.bridges.length > 1 || (this._data.not_connected || []).length > 0;
    if (!several || !bridge || !bridge.title) return name;
    const alike = this._data.bridges.filter((b) => b.title === bridge.title).length > 1;
    return `${alike ? `${bridge.title} (${bridge.bridge_id})` : bridge.title} · ${name}`;
  }

  /** The camera selector follows the bridges (one connected or removed since the panel
   * opened) and their cameras; the camera shown stays while it is there. True when the clip
   * list was asked for again. */
  _followCameras() {
    const cameras = this._cameras;
    const key = JSON.stringify(cameras);
    if (key === this._camerasKey) return false;
    this._camerasKey = key;
    const kept = cameras.some((c) => c.value === this._camera);
    const camera = kept ? this._camera : cameras.length ? cameras[0].value : null;
    const moved = camera !== this._camera;
    this._camera = camera;
    this._renderClipControls();
    if (!moved) return false;
    if (camera) {
      this._loadClips();
      return true;
    }
    // No camera left: neither its clips nor its error stay.
    this._clips = null;
    this._clipsError = null;
    this._clipsAsked = (this._clipsAsked || 0) + 1; // an answer on its way is dropped
    this._listAsked = (this._listAsked || 0) + 1;
    this.shadowRoot.querySelector(".clips").innerHTML = "";
    return false;
  }

  async _loadAudit() {
    if (!this._isAdmin || !this._data) return;
    const asked = (this._auditAsked = (this._auditAsked || 0) + 1); // the newest answer wins
    const audits = await Promise.all(
      this._data.bridges.map((bridge) =>
        this._hass
          .callWS({ type: "doorstep/audit", bridge_id: bridge.bridge_id, limit: AUDIT_RECORDS })
          .then((answer) => ({ ...answer, title: bridge.title }))
          .catch((err) => ({ bridge_id: bridge.bridge_id, title: bridge.title, error: this._message(err) })),
      ),
    );
    if (asked !== this._auditAsked) return;
    this._audits = audits;
    this._renderAudit();
  }

  _kindWords(record) {
    const kinds = this._t.kinds;
    if (record.kind === "decision") return kinds[record.outcome] || kinds.decision;
    if (record.kind === "render") return record.outcome === "ready" ? kinds.ready : kinds.render;
    return kinds[record.kind] || record.kind;
  }

  _renderAudit() {
    const box = this.shadowRoot.querySelector(".audits");
    if (!box || this._audits === null) return;
    const t = this._t;
    const several = this._audits.length > 1;
    box.innerHTML = this._audits
      .map((audit) => {
        const title = several ? `<h3>${esc(audit.title)}</h3>` : "";
        if (audit.error) return `${title}<p class="error-text" data-bridge="${esc(audit.bridge_id)}">${esc(audit.error)}</p>`;
        const check = audit.verification;
        const fill = (text, values) => text.replace(/\{(\w+)\}/g, (_m, key) => values[key] ?? "");
        const status = check.ok
          ? `<div class="check ok" data-ok="true"><strong>✓ ${esc(t.verified)}</strong> ·
               ${esc(fill(check.count === 1 ? t.verifiedDetailOne : t.verifiedDetail, { count: check.count, last: check.last_seq }))}
               ${check.past_head ? `<p>${esc(t.pastHead)}</p>` : ""}</div>`
          : `<div class="check broken" data-ok="false" role="alert"><strong>⚠ ${esc(t.broken)}</strong>
               <p>${esc(fill(t.brokenDetail, { record: check.bad_record, file: check.file ? ` (${check.file})` : "", problem: check.problem }))}</p>
               <p>${esc(t.brokenHint)}</p></div>`;
        // A table, its columns named: a screen reader says which value is which.
        const heads = [t.columnWhen, t.columnWhat, t.columnShare, t.columnWho]
          .map((head) => `<th scope="col" role="columnheader">${esc(head)}</th>`)
          .join("");
        const records = audit.records.length
          ? `<table class="records" role="table" aria-label="${esc(several ? `${t.audit} · ${audit.title}` : t.audit)}">
              <thead role="rowgroup"><tr role="row">${heads}</tr></thead>
              <tbody role="rowgroup">${audit.records
                .map(
                  (r) => `<tr class="record" role="row" data-seq="${esc(r.seq)}" data-kind="${esc(r.kind)}" data-share="${esc(r.share_id || "")}">
                  <td class="when" role="cell">${esc(this._when(r.time))}</td>
                  <td class="kind" role="cell">${esc(this._kindWords(r))}</td>
                  <td class="share-id" role="cell">${r.share_id ? `${esc(t.share)} ${esc(r.share_id)}` : esc(r.camera || "")}</td>
                  <td class="who" role="cell">${esc(r.who || "")}</td></tr>`,
                )
                .join("")}</tbody></table>`
          : `<p class="empty">${esc(t.noRecords)}</p>`;
        return `<div class="audit" data-bridge="${esc(audit.bridge_id)}">${title}${status}${records}</div>`;
      })
      .join("");
  }

  _when(iso) {
    if (!iso) return "";
    return this._timeFormat().format(new Date(iso));
  }

  /** What the times shown depend on: language, the profile's time zone, hours and date order,
   * HA's zone. */
  _timeKey() {
    const hass = this._hass;
    const locale = hass.locale || {};
    const serverZone = hass.config && hass.config.time_zone;
    return [hass.language, locale.time_zone, locale.time_format, locale.date_format, serverZone].join("|");
  }

  /** Times as Home Assistant's own pages show them to this user: in the time zone chosen in
   * their profile (the browser's, "local", or Home Assistant's, "server"), with their 12 or
   * 24 hour choice and their date order. Without such settings (an older frontend): the
   * browser's zone, the language's hours and date. */
  _timeFormat() {
    const hass = this._hass;
    const locale = hass.locale || {};
    const serverZone = (hass.config && hass.config.time_zone) || "";
    const key = this._timeKey();
    if (key === this._timeFormatKey) return this._timeFormatter;
    const options = { dateStyle: "short", timeStyle: "short" };
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

  /** Show the share requests; false when they are as shown already (nothing is redrawn). */
  _renderShares(force) {
    if (!this._data) return false;
    const key = JSON.stringify(this._data);
    if (!force && key === this._sharesKey) return false; // keep the buttons under the pointer
    this._sharesKey = key;
    const t = this._t;
    this._announceShares();
    const bridges = Object.fromEntries(this._data.bridges.map((b) => [b.bridge_id, b]));
    const canDecideSomewhere = this._data.bridges.some((b) => b.can_decide);
    const parts = [];
    for (const title of this._data.not_connected || []) {
      parts.push(`<p class="error-text not-connected" role="alert">${esc(t.notConnected.replace("{title}", title))}</p>`);
    }
    if (this._data.bridges.length && !canDecideSomewhere) {
      parts.push(`<p class="note">${esc(t.onlyApprovers)}</p>`);
    }
    if (!this._data.shares.length) parts.push(`<p class="empty">${esc(t.noShares)}</p>`);
    for (const share of this._data.shares) {
      const bridge = bridges[share.bridge_id] || {};
      const ids = `data-bridge="${esc(share.bridge_id)}" data-share="${esc(share.share_id)}"`;
      // Buttons named "Approve" or "Deny" alone would not say whose request: each says it
      // (its description), and the request is a group named after its requester.
      const who = `who-${esc(share.bridge_id)}-${esc(share.share_id)}`;
      const rows = [
        [t.cameras, share.cameras.map((name) => this._cameraLabel(bridge, name)).join(", ")],
        [t.window, share.start ? `${this._when(share.start)} – ${this._when(share.end)}` : ""],
      ];
      if (share.legal) {
        rows.push([t.authority, share.legal.authority], [t.reference, share.legal.reference], [t.legalBasis, share.legal.legal_basis]);
      }
      if (share.state === "pending" && share.deadline) rows.push([t.deadline, this._when(share.deadline)]);
      const approvedBy = share.approved_by || [];
      if (approvedBy.length) rows.push([t.approvedBy, approvedBy.join(", ")]);
      if (share.decided_by) rows.push([t.decidedBy, share.decided_by]);
      if (share.revoked_by) rows.push([t.revokedBy, share.revoked_by]);
      if (share.link_expires) rows.push([t.linkExpires, this._when(share.link_expires)]);
      // Why the bridge refused the request or could not prepare the footage, in its words.
      if (share.error) rows.push([t.problem, share.error]);
      const buttons = [];
      // A legal request's first approver cannot be its second (the bridge refuses): only Deny.
      const mayApprove = !share.you_approved;
      if (bridge.can_decide && share.state === "pending") {
        if (mayApprove) buttons.push(`<button class="action" data-action="approve" ${ids} aria-describedby="${who}">${esc(t.approve)}</button>`);
        if (mayApprove && bridge.offer_unredacted) {
          buttons.push(`<button class="action secondary" data-action="approve-unredacted" ${ids} aria-describedby="${who}">${esc(t.approveUnredacted)}</button>`);
        }
        buttons.push(`<button class="action danger" data-action="deny" ${ids} aria-describedby="${who}">${esc(t.deny)}</button>`);
      }
      if (bridge.can_decide && REVOCABLE.has(share.state)) {
        buttons.push(`<button class="action danger" data-action="revoke" ${ids} aria-describedby="${who}">${esc(t.revoke)}</button>`);
      }
      // Home Assistant's address for the internet when it has one: the link is for someone
      // outside the home. Otherwise the address this browser uses, said to be local.
      const url = share.link ? share.link_url || this._absolute(share.link) : "";
      const link = share.link
        ? `<div class="link"><input readonly aria-label="${esc(t.link)}" value="${esc(url)}">
             <button class="action secondary" data-action="copy" ${ids} aria-describedby="${who}" data-link="${esc(url)}">${esc(t.copy)}</button></div>
           ${share.link_url ? "" : `<p class="note link-note">${esc(t.linkInsideOnly)}</p>`}`
        : "";
      parts.push(`
        <div class="share" ${ids} data-state="${esc(share.state)}" role="group" aria-labelledby="${who}" tabindex="-1">
          <div class="top"><span class="who" id="${who}">${esc(t.requester)} ${esc(share.requester)}</span>
            <span class="badges">${share.kind === "legal" ? `<span class="state legal">${esc(t.legal)}</span>` : ""}
            <span class="state ${esc(share.state)}">${esc(t.states[share.state] || share.state)}</span></span></div>
          <div class="reason">${esc(share.reason)}</div>
          <dl>${rows.filter((r) => r[1]).map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join("")}</dl>
          ${share.state === "pending" && approvedBy.length ? `<p class="note second">${esc(t.secondApprover)}</p>` : ""}
          ${link}
          ${buttons.length ? `<div class="actions">${buttons.join("")}</div>` : ""}
        </div>`);
    }
    const box = this.shadowRoot.querySelector(".shares");
    // After a decision, the request decided keeps the focus: the same button when it is still
    // there (a first of two approvals), else the request itself, whose new state is said.
    const decided = this._decided;
    this._decided = null;
    const kept = this._keepFocus(box, () => (box.innerHTML = parts.join("")), decided && decided.button);
    if (decided && !kept) {
      const share = box.querySelector(decided.share);
      if (share) share.focus();
    }
    return true;
  }

  /** Tell screen readers what changed in the share requests since they were last drawn: a new
   * request, another state (approved, ready, expired...), a first approval of two. */
  _announceShares() {
    const t = this._t;
    const before = this._shareStates;
    const states = {};
    const said = [];
    for (const share of this._data.shares) {
      const key = `${share.bridge_id}/${share.share_id}`;
      const approvals = (share.approved_by || []).length;
      states[key] = `${share.state}|${approvals}`;
      if (before === undefined || before[key] === states[key]) continue;
      const words = share.state === "pending" && approvals ? t.secondApprover : t.states[share.state] || share.state;
      said.push(`${t.requester} ${share.requester}: ${words}`);
    }
    this._shareStates = states;
    if (said.length) this._announce(said.join(". "));
  }

  _absolute(path) {
    return this._hass.hassUrl ? this._hass.hassUrl(path) : new URL(path, location.origin).href;
  }

  _renderClipControls() {
    if (!this._data) return;
    const t = this._t;
    const cameras = this._cameras;
    const select =
      cameras.length > 1
        ? `<label>${esc(t.camera)} <select class="camera">${cameras
            .map((c) => `<option value="${esc(c.value)}" ${c.value === this._camera ? "selected" : ""}>${esc(c.name)}</option>`)
            .join("")}</select></label>`
        : "";
    const chips = REASONS.map(
      (r) => `<button class="chip" data-action="reason" data-reason="${r}" aria-pressed="${r === this._reason}">${esc(t[r || "all"])}</button>`,
    ).join("");
    const box = this.shadowRoot.querySelector(".filters");
    this._keepFocus(box, () => {
      box.innerHTML = `${select}<span role="group" aria-label="${esc(t.reason)}">${chips}</span>`;
    });
  }

  /** The newest clips of the camera and reason shown; with `older`, the next page after them. */
  async _loadClips(older = false) {
    if (!this._camera) return;
    const [bridgeId, camera] = this._camera.split("/");
    const reason = this._reason;
    const shown = older ? this._clips : [];
    const message = { type: "doorstep/clips", bridge_id: bridgeId, camera, limit: this.clipPage };
    if (reason) message.reason = reason;
    if (shown.length) {
      // The clips that started by the oldest one shown (1 ms later: times are rounded).
      const oldest = Date.parse(shown[shown.length - 1].start);
      message.until = new Date(oldest + 1).toISOString();
      message.limit += CLIP_OVERLAP;
    }
    // A quicker answer to a later click wins: an older one is dropped.
    const asked = (this._clipsAsked = (this._clipsAsked || 0) + 1);
    if (!older) {
      this._listAsked = (this._listAsked || 0) + 1; // a list following it is dropped
      this._listOnItsWay = asked;
    }
    let clips = [];
    let total = 0;
    let failed = null;
    try {
      ({ clips, total } = await this._hass.callWS(message));
    } catch (err) {
      failed = this._message(err);
    }
    if (asked === this._clipsAsked) this._showClips(older, reason, clips, total, failed);
    if (this._listOnItsWay !== asked) return;
    this._listOnItsWay = null;
    // Clips recorded or forgotten while this list was on its way: it follows them now.
    if (this._followWanted) {
      this._followWanted = false;
      this._followClips();
    }
  }

  /** Show a page of clips (the newest, or with `older` the next ones), or why it failed. */
  _showClips(older, reason, clips, total, failed) {
    if (older && failed) {
      // The clips shown stay, and are redrawn: "Older clips" can be clicked again.
      this._error(failed);
      this._renderClips();
      return;
    }
    if (older) this._error(null); // a failed try said so above the panel
    // The oldest clip shown (and any of the same start) comes again: none is listed twice.
    // Clips added at the top meanwhile (recorded since) stay.
    const current = older ? this._clips : [];
    const known = new Set(current.map((clip) => clip.clip_id));
    const again = clips.filter((clip) => known.has(clip.clip_id)).length;
    const fresh = clips.filter((clip) => !known.has(clip.clip_id)).slice(0, this.clipPage);
    this._clips = [...current, ...fresh];
    // The answer's total counts the clips asked for, from the oldest shown down; clips
    // recorded since the list was drawn are not among them.
    this._clipsLeft = total - again - fresh.length;
    // Shown in the list, not as "No clips." (the clips are on the bridge, out of reach); the
    // next refresh asks again.
    this._clipsError = failed;
    this._clipErrors = {};
    this._clipsShown = `${this._camera}|${reason}`;
    const focused = this.shadowRoot.activeElement;
    const fromMore = older && (!focused || focused.dataset.action === "more");
    this._renderClips();
    // "Older clips" goes from under the keyboard focus: the first of them has it.
    if (fromMore && fresh.length) this._focusClip(fresh[0].clip_id);
  }

  /** Give the keyboard focus to a clip's Play button, or to the list's heading without it. */
  _focusClip(clipId) {
    const button = clipId && this.shadowRoot.querySelector(`.clips button[data-action="play"][data-clip="${CSS.escape(clipId)}"]`);
    (button || this.shadowRoot.querySelector(".clips-section h2")).focus();
  }

  /** The newest clips again, merged into the list shown: clips recorded since go on top,
   * clips forgotten since (among the newest) leave; older pages shown stay; the clip played
   * and the place the owner scrolled to stay too. */
  async _followClips() {
    if (!this._camera) return;
    if (this._listOnItsWay) {
      // Asked now, the newest clips would be as many as the list being replaced, and would
      // come back over the new one when answered after it: they are asked once it is here.
      this._followWanted = true;
      return;
    }
    if (this._clips === null) return;
    if (this._clipsError) {
      this._loadClips(); // the whole list, as the refresh would ask
      return;
    }
    const listAsked = this._listAsked;
    const shownList = this._clipsShown;
    const [bridgeId, camera] = shownList.split("|")[0].split("/");
    const reason = shownList.split("|")[1];
    // As many as are shown (up to what one answer holds): a clip deleted among them goes.
    const limit = Math.min(MAX_CLIPS_ASKED, Math.max(this.clipPage, this._clips.length));
    const message = { type: "doorstep/clips", bridge_id: bridgeId, camera, limit };
    if (reason) message.reason = reason;
    let answer;
    try {
      answer = await this._hass.callWS(message);
    } catch (_err) {
      return; // the list shown stays; the next change asks again
    }
    // Another camera or reason was chosen meanwhile: its own list is on its way.
    if (listAsked !== this._listAsked || shownList !== this._clipsShown) return;
    const newest = answer.clips;
    const ids = new Set(newest.map((clip) => clip.clip_id));
    // The newest clips are the truth from the oldest of them up; the clips shown below that
    // (older pages) stay. Unless none of those shown is among them (more clips were recorded
    // than one page since): then the list starts again from the newest, with no gap.
    const whole = answer.total <= newest.length;
    const floor = whole || !newest.length ? -Infinity : Date.parse(newest[newest.length - 1].start);
    const shownNewest = this._clips.length ? Date.parse(this._clips[0].start) : -Infinity;
    const gap = !whole && this._clips.length > 0 && shownNewest < floor;
    const below = gap ? [] : this._clips.filter((clip) => !ids.has(clip.clip_id) && Date.parse(clip.start) <= floor);
    this._clips = [...newest, ...below];
    this._clipsLeft = Math.max(0, answer.total - this._clips.length);
    this._keepScroll(() => this._renderClips());
  }

  /** Redraw the clip list with the clip in view where it was: when the owner scrolled down,
   * clips added above do not push it away; at the top of the page, they are seen coming in
   * (as browsers anchor the scroll position). */
  _keepScroll(render) {
    const list = this.shadowRoot.querySelector(".clips");
    const scroller = this._scroller();
    const top = scroller === document.scrollingElement ? 0 : scroller.getBoundingClientRect().top;
    const items = scroller.scrollTop > 0 ? [...list.querySelectorAll("li.clip")] : [];
    const anchor = items.find((li) => li.getBoundingClientRect().bottom > top);
    const before = anchor ? anchor.getBoundingClientRect().top : 0;
    render();
    if (!anchor) return;
    const again = list.querySelector(`li.clip[data-clip="${CSS.escape(anchor.dataset.clip)}"]`);
    if (again) scroller.scrollTop += again.getBoundingClientRect().top - before;
  }

  /** What the panel scrolls in: an element of Home Assistant's frontend, or the page. */
  _scroller() {
    let node = this;
    while (node) {
      if (node instanceof Element && node.scrollHeight > node.clientHeight) {
        const overflow = getComputedStyle(node).overflowY;
        if (overflow === "auto" || overflow === "scroll") return node;
      }
      node = node.assignedSlot || node.parentNode || node.host;
    }
    return document.scrollingElement;
  }

  /** Draw the clip list; the control with the keyboard focus (or `wanted`) keeps it. */
  _renderClips(wanted = null) {
    if (this._clips === null) return;
    const list = this.shadowRoot.querySelector(".clips");
    list.dataset.shown = this._clipsShown; // which list this is: camera and reason
    this._keepFocus(list, () => this._drawClips(list), wanted);
  }

  _drawClips(list) {
    const t = this._t;
    if (this._clipsError) {
      list.innerHTML = `<li class="empty error-text" role="alert">${esc(this._clipsError)}</li>`;
      return;
    }
    if (!this._clips.length) {
      list.innerHTML = `<li class="empty">${esc(t.noClips)}</li>`;
      return;
    }
    // Forgetting counts for the same users as decisions (approvers, or administrators when
    // none is set): the others do not get the button.
    const bridgeId = (this._clipsShown || "").split("/")[0];
    const bridge = this._data && this._data.bridges.find((b) => b.bridge_id === bridgeId);
    const mayForget = !bridge || bridge.can_decide !== false;
    list.innerHTML = this._clips
      .map((clip) => {
        // "Play" and "Forget" say which clip (their description): the list has many.
        const about = `data-clip="${esc(clip.clip_id)}" data-media="${esc(clip.media_content_id)}" aria-describedby="clip-${esc(clip.clip_id)}"`;
        const forget = mayForget
          ? `<button class="action danger" data-action="forget" ${about}>${esc(t.forget)}</button>`
          : "";
        const error = this._clipErrors[clip.clip_id];
        return `<li class="clip" data-clip="${esc(clip.clip_id)}" data-reason="${esc(clip.reason)}">
          <span id="clip-${esc(clip.clip_id)}">${esc(this._when(clip.start))} · ${esc(t[clip.reason] || clip.reason)} · ${Math.round(clip.duration)} s</span>
          <span class="clip-actions"><button class="action secondary" data-action="play" ${about}>${esc(t.play)}</button>${forget}</span>
          ${error ? `<p class="clip-error error-text" role="alert">${esc(error)}</p>` : ""}</li>`;
      })
      .join("");
    const left = this._clipsLeft;
    if (left > 0) {
      const more = this._t.moreClips.replace("{count}", left);
      list.insertAdjacentHTML("beforeend", `<li class="more"><button class="action secondary" data-action="more">${esc(more)}</button></li>`);
    }
  }

  async _forget(target) {
    const clipId = target.dataset.clip;
    target.disabled = true;
    try {
      // The media browser id names the clip's bridge: only that one is asked.
      await this._hass.callService("doorstep", "forget_clip", { clip_id: target.dataset.media }, undefined, false);
      delete this._clipErrors[clipId];
      const index = this._clips.findIndex((clip) => clip.clip_id === clipId);
      this._clips = this._clips.filter((clip) => clip.clip_id !== clipId);
      this._loadAudit(); // its clip_erased record
      const focused = this.shadowRoot.activeElement;
      this._renderClips();
      // The keyboard focus was on the clip gone: the next one (or the one before) has it.
      const next = this._clips[Math.min(index, this._clips.length - 1)];
      if (!focused || focused === target) this._focusClip(next && next.clip_id);
      this._announce(this._t.clipForgotten);
      return;
    } catch (err) {
      // Refused (a share holds the clip, not an approver...): Home Assistant's words, by the clip.
      this._clipErrors[clipId] = this._message(err);
    }
    // The error is said by the clip (an alert); its Forget button keeps the focus.
    this._renderClips(focusSelector(target));
  }

  async _decide(target, decision, redact) {
    this._busy = true;
    const share = `.share[data-bridge="${CSS.escape(target.dataset.bridge)}"][data-share="${CSS.escape(target.dataset.share)}"]`;
    this._decided = { button: focusSelector(target), share };
    target.disabled = true;
    try {
      await this._hass.callWS({
        type: "doorstep/decide",
        bridge_id: target.dataset.bridge,
        share_id: target.dataset.share,
        decision,
        redact,
      });
      this._error(null);
    } catch (err) {
      this._error(err);
      this._decided = null;
      target.disabled = false;
      target.focus(); // to try again, or decide otherwise
    } finally {
      this._busy = false;
    }
    this._refreshes = 0; // the decision is in the audit log: show it
    // Redrawn even when the answer looks the same (a first of two approvals): no button
    // stays disabled.
    this._sharesKey = "";
    await this._refresh();
    this._decided = null; // not for a later redraw, when this one could not be asked
  }

  async _play(target) {
    const mediaContentId = target.dataset.media;
    this._playing = target.dataset.clip; // Close gives the focus back to its Play button
    try {
      const resolved = await this._hass.callWS({
        type: "media_source/resolve_media",
        media_content_id: mediaContentId,
      });
      const player = this.shadowRoot.querySelector(".player");
      const video = player.querySelector("video");
      video.src = this._absolute(resolved.url);
      player.hidden = false;
      video.focus(); // above the list: the keyboard is where the clip plays
      video.play().catch(() => {}); // autoplay may be refused: the controls remain
      this._error(null);
    } catch (err) {
      this._error(err);
    }
  }

  _onClick(ev) {
    const target = ev.target.closest("[data-action]");
    if (target) {
      const action = target.dataset.action;
      if (action === "approve") this._decide(target, "approve", true);
      else if (action === "approve-unredacted") {
        if (confirm(this._t.confirmUnredacted)) this._decide(target, "approve", false);
      } else if (action === "deny") this._decide(target, "deny", true);
      else if (action === "revoke") this._decide(target, "revoke", true);
      else if (action === "copy") this._copy(target);
      else if (action === "reason") {
        this._reason = target.dataset.reason;
        this._renderClipControls();
        this._loadClips();
      } else if (action === "more") {
        target.disabled = true;
        this._loadClips(true);
      } else if (action === "play") this._play(target);
      else if (action === "forget") {
        if (confirm(this._t.confirmForget)) this._forget(target);
      }
      else if (action === "close") {
        const player = this.shadowRoot.querySelector(".player");
        player.querySelector("video").pause();
        player.hidden = true;
        this._focusClip(this._playing);
      }
      return;
    }
    if (ev.target.closest("header button.menu")) {
      this.dispatchEvent(new Event("hass-toggle-menu", { bubbles: true, composed: true }));
    }
  }

  async _copy(target) {
    try {
      await navigator.clipboard.writeText(target.dataset.link);
    } catch (_err) {
      // Without a secure context there is no clipboard API: select the text instead.
      const input = target.parentElement.querySelector("input");
      input.select();
      document.execCommand("copy");
    }
    target.textContent = this._t.copied;
    this._announce(this._t.copied);
  }

  _onChange(ev) {
    if (ev.target.matches("select.camera")) {
      this._camera = ev.target.value;
      this._loadClips();
    }
  }
}

if (!customElements.get("doorstep-panel")) {
  customElements.define("doorstep-panel", DoorstepPanel);
}
