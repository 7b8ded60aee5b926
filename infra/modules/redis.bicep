// Azure Cache for Redis: the Orleans membership table (Orleans:Clustering:ProviderType = Redis). TLS only (port 6380).

@description('Azure region.')
param location string

@description('Name of the cache (globally unique).')
param name string

@description('Pricing tier: Basic has no replica (a restart loses the membership table), Standard has one.')
@allowed([
  'Basic'
  'Standard'
  'Premium'
])
param skuName string

@description('Size within the tier (C0-C6 for Basic and Standard, P1-P5 for Premium).')
@minValue(0)
@maxValue(6)
param capacity int

param tags object = {}

resource redis 'Microsoft.Cache/redis@2024-11-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
      family: skuName == 'Premium' ? 'P' : 'C'
      capacity: capacity
    }
    enableNonSslPort: false
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
    redisVersion: '6'
  }
}

@description('Name of the cache.')
output name string = redis.name

@description('Host name of the cache.')
output hostName string = redis.properties.hostName

@description('TLS port of the cache.')
output sslPort int = redis.properties.sslPort
