// Product pictures for the demo catalog: one small static SVG illustration per category (a bag of
// coffee, a mug, a candle in its jar...), coloured per product from a hash of its id, so a shelf looks
// like a shop's rather than a row of placeholders. Plain data in, markup out: no script, no external
// reference, no text but an escaped <title>, and under 2 KB each.

import { own } from "../core/records.ts";

/** Colours of one product: its object, a darker shade for details and a pale backdrop. */
interface Palette {
  main: string;
  dark: string;
  light: string;
  backdrop: string;
}

type Drawing = (palette: Palette, variant: number) => string;

const escapeXml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/** FNV-1a: a stable 32-bit number per id, the source of every per-product choice. */
export function artHash(text: string): number {
  let hash = 0x811c9dc5;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** Each category keeps its family of hues (coffee browns, tea greens...); the product picks within it. */
const hueRanges: Record<string, [number, number]> = {
  coffee: [18, 38],
  tea: [70, 140],
  kitchen: [0, 360],
  candles: [20, 60],
  bedding: [190, 250],
  dresses: [0, 360],
  tops: [0, 360],
  denim: [205, 228],
  heels: [330, 380],
  sneakers: [0, 360],
  jewellery: [38, 52],
  handbags: [10, 40],
  skincare: [150, 200],
  makeup: [335, 375],
  fragrance: [260, 320],
};

function paletteFor(productId: string, categoryId: string): Palette {
  const hash = artHash(productId);
  const [low, high] = own(hueRanges, categoryId) ?? [0, 360];
  const hue = Math.round(low + (hash % 1000) * ((high - low) / 1000)) % 360;
  const saturation = 45 + ((hash >>> 10) % 25);
  const lightness = 42 + ((hash >>> 16) % 18);
  return {
    main: `hsl(${hue} ${saturation}% ${lightness}%)`,
    dark: `hsl(${hue} ${saturation}% ${lightness - 22}%)`,
    light: `hsl(${hue} ${saturation}% ${Math.min(lightness + 30, 92)}%)`,
    backdrop: `hsl(${(hue + 180) % 360} 30% 94%)`,
  };
}

const mug: Drawing = (p, v) =>
  `<path d="M128 128h132v168q0 30-30 30h-72q-30 0-30-30z" fill="${p.main}"/>` +
  `<path d="M260 166q62 0 52 58t-52 52" stroke="${p.main}" stroke-width="18" fill="none"/>` +
  `<rect x="128" y="128" width="132" height="22" fill="${p.dark}"/>` +
  (v % 2
    ? `<circle cx="194" cy="230" r="28" fill="${p.light}"/>`
    : `<path d="M150 214h88M150 246h88" stroke="${p.light}" stroke-width="10"/>`) +
  `<path d="M170 104q-14-20 0-40M206 104q-14-20 0-40" stroke="${p.dark}" stroke-width="5" fill="none" opacity=".5"/>`;

/** Kitchen titles name the object (pan, bowl, knife, mug set): each gets its own drawing. */
const kitchenDrawings: [RegExp, Drawing][] = [
  [
    /pan/i,
    (p) =>
      `<ellipse cx="170" cy="250" rx="110" ry="52" fill="${p.dark}"/><ellipse cx="170" cy="240" rx="96" ry="40" fill="${p.main}"/>` +
      `<path d="M262 232l96-30" stroke="#3a3a3a" stroke-width="18" stroke-linecap="round"/>`,
  ],
  [
    /bowl/i,
    (p) =>
      `<path d="M90 200h220q-10 120-110 120T90 200z" fill="${p.main}"/><ellipse cx="200" cy="200" rx="110" ry="22" fill="${p.dark}"/>` +
      `<path d="M120 236h160" stroke="${p.light}" stroke-width="8"/>`,
  ],
  [
    /knife/i,
    (p) =>
      `<path d="M90 230l170-40q30-4 40 16l-190 38z" fill="#c8ccd0"/><rect x="276" y="188" width="100" height="30" rx="12" transform="rotate(-12 276 188)" fill="${p.dark}"/>`,
  ],
];

const shadow = '<ellipse cx="200" cy="338" rx="120" ry="14" fill="#0002"/>';

const drawings: Record<string, Drawing> = {
  coffee: (p) =>
    `<path d="M128 118h144l14 212H114z" fill="${p.main}"/><path d="M122 94h156l-6 26H128z" fill="${p.dark}"/>` +
    `<rect x="150" y="180" width="100" height="96" rx="10" fill="#fffd"/>` +
    `<ellipse cx="200" cy="228" rx="22" ry="31" fill="${p.dark}"/><path d="M200 199q-12 29 0 58" stroke="#fffd" stroke-width="4" fill="none"/>`,
  tea: (p, v) =>
    `<ellipse cx="200" cy="318" rx="118" ry="20" fill="${p.light}"/>` +
    `<path d="M112 170h176q-6 140-88 140t-88-140z" fill="${p.main}"/>` +
    `<path d="M286 196q52 0 40 46t-56 40" stroke="${p.main}" stroke-width="14" fill="none"/>` +
    `<path d="M${170 + (v % 3) * 10} 170v-70" stroke="${p.dark}" stroke-width="3"/><rect x="${152 + (v % 3) * 10}" y="74" width="36" height="30" rx="4" fill="${p.dark}"/>`,
  candles: (p) =>
    `<rect x="130" y="150" width="140" height="180" rx="18" fill="${p.light}"/><rect x="138" y="190" width="124" height="132" rx="12" fill="${p.main}"/>` +
    `<rect x="150" y="234" width="100" height="52" rx="6" fill="#fffd"/><path d="M200 190v-26" stroke="#333" stroke-width="4"/>` +
    `<path d="M200 112q22 26 0 52q-22-26 0-52z" fill="#f5a623"/><path d="M200 134q9 12 0 24q-9-12 0-24z" fill="#fff3b0"/>`,
  bedding: (p, v) =>
    `<rect x="92" y="262" width="216" height="64" rx="14" fill="${p.dark}"/><rect x="102" y="200" width="196" height="64" rx="14" fill="${p.main}"/>` +
    `<rect x="112" y="138" width="176" height="64" rx="14" fill="${p.light}"/>` +
    (v % 2 ? `<path d="M112 170h176" stroke="${p.main}" stroke-width="4" stroke-dasharray="10 8"/>` : ""),
  dresses: (p, v) =>
    `<path d="M170 70h60l-6 40 26 40-14 26 74 154H90l74-154-14-26 26-40z" fill="${p.main}"/>` +
    `<path d="M156 176h88" stroke="${p.dark}" stroke-width="10"/>` +
    (v % 2 ? `<path d="M128 260h144M108 300h184" stroke="${p.light}" stroke-width="6"/>` : ""),
  tops: (p, v) =>
    `<path d="M150 90l-70 40 24 56 34-16v160h124V170l34 16 24-56-70-40q-20 26-50 26t-50-26z" fill="${p.main}"/>` +
    (v % 2 ? `<path d="M138 200h124M138 240h124M138 280h124" stroke="${p.light}" stroke-width="12"/>` : "") +
    `<path d="M170 92q30 22 60 0" stroke="${p.dark}" stroke-width="6" fill="none"/>`,
  denim: (p) =>
    `<path d="M132 72h136l14 256h-62l-20-170-20 170h-62z" fill="${p.main}"/><rect x="132" y="72" width="136" height="24" fill="${p.dark}"/>` +
    `<path d="M150 120q16 14 34 0M216 120q16 14 34 0" stroke="${p.light}" stroke-width="4" fill="none"/>` +
    `<circle cx="200" cy="84" r="5" fill="#e0b64a"/>`,
  heels: (p) =>
    `<path d="M96 176q10-14 24 0l78 92q18 22 50 22h58q26 0 26 22v10H198q-36 0-60-34l-22-30-4 84h-14z" fill="${p.main}"/>` +
    `<path d="M120 182l-2 82" stroke="${p.dark}" stroke-width="12"/><path d="M232 290h96v18H232z" fill="${p.dark}"/>`,
  sneakers: (p, v) =>
    `<path d="M80 302v-52q0-20 18-26l70-26 38 34q40 22 94 28 34 4 34 30v12z" fill="${p.light}"/>` +
    `<path d="M80 298h254v22q0 8-8 8H88q-8 0-8-8z" fill="${p.dark}"/>` +
    `<path d="M150 210l20 24M170 202l20 24M190 210l18 18" stroke="${p.main}" stroke-width="8"/>` +
    `<path d="M${220 + (v % 3) * 6} 262q40 0 70 14" stroke="${p.main}" stroke-width="12" fill="none"/>`,
  jewellery: (p, v) =>
    `<path d="M120 90q80 170 160 0" stroke="${p.main}" stroke-width="8" fill="none"/>` +
    `<circle cx="200" cy="${v % 2 ? 234 : 226}" r="${v % 2 ? 34 : 26}" fill="${p.main}"/><circle cx="200" cy="${v % 2 ? 234 : 226}" r="${v % 2 ? 18 : 12}" fill="${p.light}"/>` +
    `<circle cx="191" cy="${v % 2 ? 225 : 219}" r="5" fill="#fff"/>`,
  handbags: (p, v) =>
    `<path d="M150 150q0-70 50-70t50 70" stroke="${p.dark}" stroke-width="14" fill="none"/>` +
    `<path d="M112 150h176l20 176H92z" fill="${p.main}"/><rect x="180" y="180" width="40" height="22" rx="5" fill="${p.light}"/>` +
    (v % 2 ? `<path d="M104 250h192" stroke="${p.dark}" stroke-width="6"/>` : ""),
  skincare: (p) =>
    `<rect x="150" y="150" width="100" height="180" rx="22" fill="${p.main}"/><rect x="180" y="104" width="40" height="50" rx="6" fill="${p.dark}"/>` +
    `<path d="M190 104V70h48v14h-30v20" fill="${p.dark}"/><rect x="164" y="210" width="72" height="70" rx="8" fill="#fffd"/>` +
    `<path d="M180 238h40M180 254h28" stroke="${p.main}" stroke-width="6"/>`,
  makeup: (p) =>
    `<rect x="160" y="220" width="80" height="110" rx="8" fill="#2b2b2b"/><rect x="166" y="192" width="68" height="34" rx="4" fill="#c9a24a"/>` +
    `<path d="M174 192v-86l52-34v120z" fill="${p.main}"/><path d="M226 72v120h-12V82z" fill="${p.dark}"/>`,
  fragrance: (p) =>
    `<rect x="118" y="160" width="164" height="170" rx="26" fill="${p.main}" opacity=".9"/><rect x="140" y="186" width="120" height="120" rx="16" fill="${p.light}" opacity=".6"/>` +
    `<rect x="178" y="128" width="44" height="36" rx="4" fill="${p.dark}"/><rect x="168" y="82" width="64" height="50" rx="10" fill="#c9a24a"/>`,
};

/** A wrapped parcel: the drawing for an unknown product or a category without one. */
const parcel: Drawing = (p) =>
  `<rect x="110" y="140" width="180" height="180" rx="10" fill="${p.main}"/><path d="M200 140v180M110 220h180" stroke="${p.light}" stroke-width="16"/>` +
  `<path d="M200 140q-50-60-60-10t60 10q50-60 60-10t-60 10" stroke="${p.dark}" stroke-width="8" fill="none"/>`;

/**
 * The picture of a product: `categoryId` chooses the drawing, `productId` its colours and small variations.
 * `title` becomes the image's accessible name inside the SVG (escaped); pages still give <img> an alt.
 */
export function productArt(product: { id: string; title: string; categoryId: string | null }): string {
  const categoryId = product.categoryId ?? "";
  const palette = paletteFor(product.id, categoryId);
  const draw =
    categoryId === "kitchen"
      ? (kitchenDrawings.find(([noun]) => noun.test(product.title))?.[1] ?? mug)
      : (own(drawings, categoryId) ?? parcel);
  const variant = artHash(`${product.id}:variant`) % 6;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400" viewBox="0 0 400 400" role="img"><title>${escapeXml(product.title)}</title><rect width="400" height="400" fill="${palette.backdrop}"/>${shadow}${draw(palette, variant)}</svg>`;
}
