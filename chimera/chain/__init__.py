"""The sandbox wallet chain: a local anvil node, the TestUSDC token, and agents' encrypted keys (specs/chain.md).

web3 and eth-account are imported by `chimera.chain.token` and `chimera.chain.keystore` only, so importing
`chimera.chain.anvil` stays light.
"""
