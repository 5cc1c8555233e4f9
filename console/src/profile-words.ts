// The customer page's figures in words where a number alone would mislead (pages/customers.tsx).

/**
 * What a CLV from one or two days of orders rests on, said where the figure is (a till would read it as
 * their own). One day: no repeat to go by, so how often they buy and what an order is worth are all
 * customers' (the order value leaves the first day out), and the CLV can be many times what they spent.
 * Two days: one repeat, which moves the order value partly their way but says little of their rhythm.
 */
export function clvBasis(days: number | null): string[] {
  if (days === 1)
    return ["mostly all customers' averages: one day of orders says little of how often they buy or what they spend"];
  if (days === 2) return ["much of it all customers' averages: two days of orders say little of how often they buy"];
  return [];
}
