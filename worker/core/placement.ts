// A shelf's placement name (`placement=` on GET /v1/recommendations, `placement` on its events), written
// once for both sides: the API's query schema refuses any other (recommendations.schemas.ts), and the
// storefront widget (widget/storefront/shelf.tsx) leaves a name the API would refuse out of the shelf's
// events, whose beacon would otherwise be refused whole. Pure and on its own: the widget's bundle takes
// these constants and nothing else of the worker's.

/** The longest placement name. */
export const maxPlacementLength = 40;

/** Lowercase letters, digits, - or _, starting with a letter or digit, at most maxPlacementLength (40) characters. */
export const placementPattern = /^[a-z\d][a-z\d_-]{0,39}$/;
