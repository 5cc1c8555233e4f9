// The slice of the GET /v1/recommendations answer the widget reads, typed from the worker's response
// schema by `import type` (erased by the build: the bundle carries no worker code). Parsed
// defensively (api.ts): the widget must survive a field it does not expect rather than break a page,
// so everything it can do without is optional here.
import type { RecommendationsResponse } from "../../worker/recommendations/recommendations.schemas.ts";

type Answer = RecommendationsResponse["data"];
type AnswerItem = Answer["items"][number];

/** A machine-readable reason, as the API sends it; the widget also reads a `text` on one. */
export type Reason = Partial<AnswerItem["reasons"][number]> & { text?: string };

/**
 * `price` is what the shopper pays today (the sale price when on sale); a struck-through `listPrice`
 * shows only when `price < listPrice`. The card's sentence is `reason`.
 */
export type Item = Pick<AnswerItem, "id" | "title" | "price"> &
  Partial<Pick<AnswerItem, "url" | "imageUrl" | "listPrice" | "categoryId" | "reason">> & { reasons?: Reason[] };

/** `degraded`: the API could not read its database and sent the last good popular shelf; shown as is. */
export type Shelf = Pick<Answer, "recommendationId"> &
  Partial<Pick<Answer, "arm" | "degraded" | "customerKnown">> & { items: Item[] };

/** Imports the optional module /widget/v1-<name>.js (index.tsx): once per page, then the same promise. */
export type LoadPart = <Module>(name: string) => Promise<Module>;

/** cart.ts's cartButton: draws a card's "Add to cart" button with the shelf's Preact. */
export type CartButton = typeof import("./cart.ts").cartButton;
