/**
 * The daemon's event stream: the bus (ordered ids, bounded replay ring) and
 * the adapters that publish on it for the VM service and the pools. It must
 * not import the modules it reports on: they call its adapters through
 * their own observer interfaces.
 */
export {
  EventBus,
  EVENT_TYPES,
  DEFAULT_EVENT_BUFFER,
  type EventType,
  type EventPayloads,
  type BusEvent,
  type EventListener,
  type ReplayResult,
} from './bus.js';
export { PoolEventPublisher, type PoolCounts, type PoolEventOptions } from './pool-events.js';
export { vmEventObserver, type VmEventObserver, type ReadyVm } from './vm-events.js';
