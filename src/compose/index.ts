export { createService, type Service, type ServiceOptions } from './service';
