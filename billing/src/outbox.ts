/** The persisted outbox lives in the data package (the operator enqueues key and tenant notifications too). */
export { enqueueNotification, type Notification, type WebhookEndpoint, type WebhookEventType } from "@crosslogic/data/outbox";
