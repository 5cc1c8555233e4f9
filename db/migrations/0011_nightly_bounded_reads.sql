CREATE INDEX `orders_placed_idx` ON `orders` (`placed_at`,`id`);--> statement-breakpoint
CREATE INDEX `stage_transitions_run_id_idx` ON `stage_transitions` (`run_id`);