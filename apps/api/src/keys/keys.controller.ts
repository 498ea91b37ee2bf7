import { Controller, Delete, Get, Param, Patch, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiTags } from '@nestjs/swagger';
import { KeysService, type Principal } from '@kura/core';
import {
  createKeyRequestSchema,
  listQuerySchema,
  updateKeyRequestSchema,
  type CreateKeyRequest,
  type ListQuery,
  type UpdateKeyRequest,
} from '@kura/schema';
import { CurrentPrincipal } from '../http/principal.decorator.js';
import { documentBody, documentQuery, JsonBody, Query } from '../http/zod.js';

@ApiTags('keys')
@ApiBearerAuth()
@Controller('v1/keys')
export class KeysController {
  constructor(private readonly keys: KeysService) {}

  /** Creates an API key (admin). The key is in this reply only. */
  @Post()
  @documentBody(createKeyRequestSchema)
  create(@CurrentPrincipal() principal: Principal, @JsonBody(createKeyRequestSchema) request: CreateKeyRequest) {
    return this.keys.create(principal, request);
  }

  @Get()
  @documentQuery(listQuerySchema)
  list(@CurrentPrincipal() principal: Principal, @Query(listQuerySchema) query: ListQuery) {
    return this.keys.list(principal, query);
  }

  /** The calling key (any role): how a client checks its key and learns its role and quota. */
  @Get('me')
  me(@CurrentPrincipal() principal: Principal) {
    return this.keys.me(principal);
  }

  @Get(':id')
  get(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.keys.get(principal, id);
  }

  /** Renames a key or sets its quota `{ actPerMinute, stepsPerDay }` (null removes it). */
  @Patch(':id')
  @documentBody(updateKeyRequestSchema)
  update(@CurrentPrincipal() principal: Principal, @Param('id') id: string, @JsonBody(updateKeyRequestSchema) request: UpdateKeyRequest) {
    return this.keys.update(principal, id, request);
  }

  /** Revokes a key; requests with it fail from now on. */
  @Delete(':id')
  revoke(@CurrentPrincipal() principal: Principal, @Param('id') id: string) {
    return this.keys.revoke(principal, id);
  }
}
