CREATE TABLE `customer_products` (
	`customer_id` text NOT NULL,
	`product_id` text NOT NULL,
	`orders` integer NOT NULL,
	`last_purchased_at` text NOT NULL,
	PRIMARY KEY(`customer_id`, `product_id`)
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `customer_products` (`customer_id`, `product_id`, `orders`, `last_purchased_at`)
SELECT o.customer_id, l.product_id, count(DISTINCT o.id), max(o.placed_at)
FROM orders o JOIN order_lines l ON l.order_id = o.id
GROUP BY o.customer_id, l.product_id;
