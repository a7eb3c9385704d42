"""Money: where a paid call got to (charging), the one rule (paying) and the one wrapper every
door pays through (payer), prices (pricing, price_watch) and the durable ledger (ledger/)."""
