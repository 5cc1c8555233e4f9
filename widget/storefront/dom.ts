// The shelf's JSX factory: builds DOM nodes directly. The shelf renders once per answer and never
// updates in place (a new answer or a new token builds it again), so it needs no virtual DOM, diffing or
// component state; this keeps the whole widget far under its byte budget (docs/embedding.md). It covers
// what the shelf's markup uses: function components, `ref` callbacks (called with the new element), `on*`
// event listeners, attributes (null, undefined and false leave them out) and nested child arrays.
import type { JSX as PreactJSX } from "preact";

type Child = Node | string | number | boolean | null | undefined | Child[];
type Component = (props: never) => Node;

export function h(type: string | Component, props: Record<string, unknown> | null, ...children: Child[]): Node {
  if (typeof type === "function") return type({ ...props, children } as never);
  const element = document.createElement(type);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (name === "ref") (value as (element: Element) => void)(element);
    else if (name.startsWith("on")) element.addEventListener(name.slice(2).toLowerCase(), value as EventListener);
    else if (name !== "key" && value != null && value !== false) element.setAttribute(name, value as string);
  }
  element.append(...(children.flat(9).filter((child) => child != null && typeof child !== "boolean") as Node[]));
  return element;
}

// The markup is type-checked against Preact's JSX element and attribute types (types only: no Preact
// code is bundled).
export declare namespace h {
  namespace JSX {
    type Element = Node;
    type IntrinsicElements = PreactJSX.IntrinsicElements;
    type IntrinsicAttributes = PreactJSX.IntrinsicAttributes;
    type ElementChildrenAttribute = PreactJSX.ElementChildrenAttribute;
  }
}
