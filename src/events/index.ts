export { EventBus, EVENT_TYPES, DEFAULT_EVENT_BUFFER, type EventType, type EventPayloads, type BusEvent, type EventListener, type ReplayResult } from './bus.js';
