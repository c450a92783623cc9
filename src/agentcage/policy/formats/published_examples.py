"""Published documentation and test values, by digest.

Values that providers, standards and tools print in their documentation, test
vectors and default development setups. They are shaped like credentials and
grant nothing (AWS's example keys are refused, test card numbers are declined
in live mode, the test-vector wallets and development-chain accounts are public).
Only the first 128 bits of each value's SHA-256 are kept, so this file holds no
key-shaped literal; `tests/unit/policy/formats/test_documentation.py` rebuilds
a few of the values from their public sources and checks they are listed.
"""

from __future__ import annotations

import hashlib

PUBLISHED: frozenset[str] = frozenset(
    (
        # Hardhat/Anvil default accounts 0-19 (mnemonic `test test ... junk`) and
        # Ganache's first deterministic account
        "bc1a50966c9e6486bc4ebf880b51611a",
        "8335c55334821eefd4334369ff9c04a8",
        "b26ab6529d20ebebb4192256f2029847",
        "64034b44c579b335ab5e85debbfe7278",
        "4d3e46eec8244d1d106f866ee48994f6",
        "0aedba9d586f34f95cf1f0d54926f62e",
        "28e543d3753fc9d14c658ebef20b76a3",
        "f070994a8599478580678f2b9482c5f0",
        "38e69fdd19aefeb4adf56312f10e62c3",
        "967f21586cdf1248a862f2cfb3300997",
        "0b33e0132123e78d42dd12a0fbbbacd1",
        "84bc109b3d59b0173a76fc3d831360a6",
        "85bde548053aab4b5a6c78473d5eb2ad",
        "f1513114f60e5e95732b840669fe8395",
        "5330d388af894c9e1a181a06a3ce44d6",
        "a2e06155cb1a424f972c3abfaddc9cea",
        "4a67d7a0d8a16d6d954cef19eb5afdbd",
        "b08bdfde9930d9202809530dcbe193c5",
        "cf1fc66f853151a4c6666909c8f1f80e",
        "100546a8b020a55aa09b2d34b50de9a3",
        "578592185588730b9d10b87e2274706a",
        # master keys of BIP-32 test vector 1 and of the BIP-39 test mnemonics
        # `abandon ... about` (passphrases TREZOR and none) and `test ... junk`
        "2243ae4c730144699810edff877f309b",
        "ce0e5e2d20c072573ebbd11097f811c9",
        "7f05cb6f0634ef6e28c2643b8c716437",
        "bb9d2e5a72c0af906fadab94ddeb30ff",
        # the Bitcoin wiki's WIF example, uncompressed and compressed
        "9d6a2b9d1f01d4577cbdce4de6f0834a",
        "110040843c3adf0df9dfa12aa89635f8",
        # test card numbers published by payment processors (Stripe, Braintree, Adyen, PayPal)
        "477bba133c182267fe5f086924abdc5d",
        "68594afe9c9cda525f6aca7a7316ca06",
        "2f725bbd1f405a1ed0336abaf85ddfeb",
        "576c15a8072461c216efb9bd7306a6fc",
        "b40e9bc7a74d50ab4f006ab0d3e85a8b",
        "304945e91de3deff52a61d08733141d7",
        "3a134ef77d4e2e4cdad2d2945ff1f76c",
        "53a8fc816e63b7a5ccd17aaff93f28bc",
        "19ff47cc8024c133d5845d3f8938caca",
        "d8086d483c15c711ebba19f966b97d3c",
        "8c8bf8372ef130a60ac541c516042580",
        "10f6a49b3088d98187bf43161da352a7",
        "20e6583871d36495e2beca33ecfc369c",
        "d79449f462cec9af0d857c3e1af888d4",
        "7cbcc57fc39e4317fa8d55bb2d442f82",
        "9bbef19476623ca56c17da75fd57734d",
        "dd13cdf9af9dd3baf46ce96aecd7163c",
        "dd1ed74bd626c6fa86bdffd25029a46c",
        "259574b62f6e97a1b7bac968642ddbd9",
        "44d1fb5dc4a2717ff21b10e26a70a531",
        "49ed370182b3e634b99a7cb7dc4eb2c1",
        "c32066eec7feb6582d3c0390eb4d23b4",
        "dd34ed4550cb927d83f22b44a13895c2",
        "b5f0856bd625aa220447db43e7099ab7",
        "e523a5e893d92b674413849374a7da00",
        "be6a3050f2611250d0b50c1fa6aff7d2",
        "334b48feec00e7ec9808e50f1f05efd5",
        "3aebd9be84d81a1c5676e31adda86653",
        "85975050568d41fced6fe6c4b3e158fc",
        "51a4ae4c6ae999146474a67cbcb3b05f",
        "f41e7ca4a3d71c4f047581f2ae2d6a8d",
        "23b1f7e3e19a896f4cc8fa633affb53f",
        "1c9d38ed26cd808fa3b02b9b3b988a7c",
        "c598d138de1c5d049a9108a009924a72",
        "0ba80f703c657bed3cf0281f6a545f15",
        "f561bab6514c4256b0846e34ca2d09b1",
        "f707fea770bb1731977e91e735fe36a7",
        "3cc8217a6aad545082e07e563edeec44",
        "35b8ee49a804ee51d5433292646d3de9",
        "d06804b9a0089cf547d3f791ce8ae335",
        "a432612314aa24de7446d3d7a78155a9",
        "b44957299de2920195ae974cc461cffc",
        "acd08f29a41f2e55ab0c4f774b1562b0",
        "e5de3c3d9fcb43b15abddceb57a9f700",
        "9830b424b7a69ba9909021c80d56005f",
        "5a65d383fa6b08bc756ab9ea45fe9406",
        "62ac087033ba812fa52dd39984ff222b",
        "c5a9bff2bba174c426a7d5e18884dbde",
        "1d942407169d8f20c6f6152ff0c398ad",
        "75997d50623ab744b69bf6d32eb00c40",
        "f2e5869113fb2e20e8797fa14432dbb4",
        "975136130120262dd3a5716447bbcab6",
        "1789612b7ca1f7d829a85f8996d6c12b",
        "7d528329c37019125be995b1cddeeaf8",
        "5cc14dbd1b49a8f5ef93d813d8d68512",
        "273476b83f26d858e3e62e1fc042e069",
        "46a849204eaec3f01c9b0db776dad392",
        "95782a0826b00e0917f40deadb36f714",
        "03ee24d6134fdadef4641af565f4490e",
        "d0309c4bba5f7de58177d6bf98632ace",
        "b0f404c72d66ad1bbcb1fbf531c863bc",
        "1092827960b3c77ce9e4665740449a61",
        "b91b1a035298ec22af355823242c743c",
        "d5f5b1ac265dfac3a46343273a2db95b",
        "a11d51919e9b964971e1e25aead695d8",
        "c8d3a8026f8efb4d180b4609e9d00baa",
        "6173c80aa44a8cdea78c56a062da94c1",
        "75a352fd5271d7aec77bbf469881cdf6",
        "b647994f8bbc5b4c03979735863db484",
        "1653a87042cd03cf0dad38aded0bb108",
        # example IBANs of the IBAN registry and national banking associations
        "45c755c9e88ba16735daa1e465dde67b",
        "5488b036f43dca672fa2b95bf5dbb2a3",
        "faf7e1c0107370ff6f5d03205da7d8ae",
        "cb2609a461853b2a8da2f9392168c656",
        "b179add486f3c7e1a11795d0948ce174",
        "701502320c05f830e08c212f53ec9c54",
        "5806e726dc53200da69c9c0f4aa696ed",
        "c498d017d83bf116da548fd5e517645c",
        "b84613f12f07e19880a16fd44defa4d9",
        "0669f8f5825f3f3b9d043788445517e5",
        "122da061f22f818b2ba8670f61b404a1",
        "34d9c40d6d8e3e53b85400fc51871b20",
        "f6c8d84f1d6cf66ef9c24795e0d82047",
        "76a477f9d6f5c972a38825a79c99d770",
        "95c1bd675f346c512da2b6458af97147",
        "d83a36c127d39e9eb7ca2c7e5ff2eb34",
        "274325e2aab5c46a199d3530dc1237b3",
        "8f8e3c05eae306181b07b55c4c822735",
        "1f6b15459e5647fb06e9448a529a112b",
        # the access keys in AWS documentation
        "1a5d44a2dca19669d72edf4c4f1c27c4",
        "78314b11be2e581549ac1c4f616563fa",
        "c6ea27c534f993d31f0aef882e3d200e",
        "e21b597ba6b9cafa59d9ebc4d65c0385",
        # the Bitcoin genesis address and BIP-173/350/13 example addresses
        "31a9d2e8a70a091d65a58d2a08f8833a",
        "6cd42dab0217b54fdf5df95b892f055d",
        "69bfba1ac9ac22d45219a82fd343747a",
        "67fd685eca7e75b229d724cb78aa0dea",
        "76c6b868ba92933a4c04ee0cc13b6dc5",
        "dc130b6083549636f7cc50d79a01a574",
    )
)


def published(value: bytes) -> bool:
    """`value` is a published documentation or test value."""
    return hashlib.sha256(value).hexdigest()[:32] in PUBLISHED
